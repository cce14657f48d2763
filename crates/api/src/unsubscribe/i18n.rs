//! The preference centre's words, one table per language, and the choice of
//! language: the message's own (`language` or `lang` metadata), else the best of the
//! request's `Accept-Language`, else English.
//!
//! Templates hold `{sender}`, `{list}` and `{purpose}` placeholders, filled by
//! [`fill`] with values the caller has escaped.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// German.
    De,
    /// Polish.
    Pl,
    /// Russian.
    Ru,
    /// French.
    Fr,
    /// Spanish.
    Es,
}

/// The words of one language.
#[derive(Debug)]
pub struct Strings {
    /// The page's title.
    pub title: &'static str,
    /// Who sends the mail (`{sender}`).
    pub intro: &'static str,
    /// Who sends the mail, through which list (`{sender}`, `{list}`).
    pub intro_list: &'static str,
    /// The button that leaves the list (`{list}`).
    pub leave_list: &'static str,
    /// The button that stops all marketing mail.
    pub stop_marketing: &'static str,
    /// The button that withdraws a purpose's consent (`{purpose}`).
    pub withdraw: &'static str,
    /// The title of the page that confirms a choice.
    pub done_title: &'static str,
    /// The list was left (`{list}`).
    pub left_list: &'static str,
    /// Marketing mail stopped (`{sender}`).
    pub marketing_stopped: &'static str,
    /// A purpose's consent was withdrawn (`{purpose}`).
    pub withdrawn: &'static str,
    /// The link back to the preferences.
    pub back: &'static str,
    /// The title of the page after a failure.
    pub retry_title: &'static str,
    /// The text of the page after a failure.
    pub retry: &'static str,
}

const EN: Strings = Strings {
    title: "Email preferences",
    intro: "You receive these emails from {sender}.",
    intro_list: "You receive these emails from {sender} through the list “{list}”.",
    leave_list: "Unsubscribe from “{list}”",
    stop_marketing: "Stop all marketing mail",
    withdraw: "Withdraw consent for “{purpose}”",
    done_title: "Your choice is saved",
    left_list: "You have left the list “{list}”.",
    marketing_stopped: "You will not receive marketing mail from {sender} any more.",
    withdrawn: "Your consent for “{purpose}” is withdrawn.",
    back: "Back to your email preferences",
    retry_title: "Please try again",
    retry: "Your request could not be recorded just now. Please try again in a minute.",
};

const DE: Strings = Strings {
    title: "E-Mail-Einstellungen",
    intro: "Sie erhalten diese E-Mails von {sender}.",
    intro_list: "Sie erhalten diese E-Mails von {sender} über die Liste „{list}“.",
    leave_list: "Von „{list}“ abmelden",
    stop_marketing: "Keine Werbe-E-Mails mehr erhalten",
    withdraw: "Einwilligung für „{purpose}“ widerrufen",
    done_title: "Ihre Auswahl ist gespeichert",
    left_list: "Sie sind von der Liste „{list}“ abgemeldet.",
    marketing_stopped: "Sie erhalten keine Werbe-E-Mails von {sender} mehr.",
    withdrawn: "Ihre Einwilligung für „{purpose}“ ist widerrufen.",
    back: "Zurück zu Ihren E-Mail-Einstellungen",
    retry_title: "Bitte versuchen Sie es erneut",
    retry: "Ihre Auswahl konnte gerade nicht gespeichert werden. \
            Bitte versuchen Sie es in einer Minute erneut.",
};

const PL: Strings = Strings {
    title: "Ustawienia wiadomości e-mail",
    intro: "Otrzymujesz te wiadomości od {sender}.",
    intro_list: "Otrzymujesz te wiadomości od {sender} z listy „{list}”.",
    leave_list: "Wypisz mnie z listy „{list}”",
    stop_marketing: "Zrezygnuj ze wszystkich wiadomości marketingowych",
    withdraw: "Wycofaj zgodę na „{purpose}”",
    done_title: "Zapisano Twój wybór",
    left_list: "Wypisano Cię z listy „{list}”.",
    marketing_stopped: "Nie będziesz już otrzymywać wiadomości marketingowych od {sender}.",
    withdrawn: "Twoja zgoda na „{purpose}” została wycofana.",
    back: "Wróć do ustawień wiadomości e-mail",
    retry_title: "Spróbuj ponownie",
    retry: "Nie udało się teraz zapisać Twojego wyboru. Spróbuj ponownie za minutę.",
};

const RU: Strings = Strings {
    title: "Настройки рассылки",
    intro: "Вы получаете эти письма от {sender}.",
    intro_list: "Вы получаете эти письма от {sender} по списку рассылки «{list}».",
    leave_list: "Отписаться от списка «{list}»",
    stop_marketing: "Отказаться от всех рекламных рассылок",
    withdraw: "Отозвать согласие на «{purpose}»",
    done_title: "Ваш выбор сохранён",
    left_list: "Вы отписались от списка «{list}».",
    marketing_stopped: "Вы больше не будете получать рекламные письма от {sender}.",
    withdrawn: "Ваше согласие на «{purpose}» отозвано.",
    back: "Вернуться к настройкам рассылки",
    retry_title: "Попробуйте ещё раз",
    retry: "Сейчас не удалось сохранить ваш выбор. Пожалуйста, попробуйте ещё раз через минуту.",
};

const FR: Strings = Strings {
    title: "Préférences d’e-mail",
    intro: "Vous recevez ces e-mails de la part de {sender}.",
    intro_list: "Vous recevez ces e-mails de la part de {sender} via la liste « {list} ».",
    leave_list: "Se désabonner de « {list} »",
    stop_marketing: "Ne plus recevoir d’e-mails marketing",
    withdraw: "Retirer mon consentement pour « {purpose} »",
    done_title: "Votre choix est enregistré",
    left_list: "Vous avez quitté la liste « {list} ».",
    marketing_stopped: "Vous ne recevrez plus d’e-mails marketing de la part de {sender}.",
    withdrawn: "Votre consentement pour « {purpose} » est retiré.",
    back: "Retour à vos préférences d’e-mail",
    retry_title: "Veuillez réessayer",
    retry: "Votre choix n’a pas pu être enregistré pour le moment. \
            Veuillez réessayer dans une minute.",
};

const ES: Strings = Strings {
    title: "Preferencias de correo electrónico",
    intro: "Recibes estos correos de {sender}.",
    intro_list: "Recibes estos correos de {sender} a través de la lista «{list}».",
    leave_list: "Darme de baja de «{list}»",
    stop_marketing: "No recibir más correos promocionales",
    withdraw: "Retirar mi consentimiento para «{purpose}»",
    done_title: "Tu elección se ha guardado",
    left_list: "Te has dado de baja de la lista «{list}».",
    marketing_stopped: "Ya no recibirás correos promocionales de {sender}.",
    withdrawn: "Se ha retirado tu consentimiento para «{purpose}».",
    back: "Volver a tus preferencias de correo",
    retry_title: "Inténtalo de nuevo",
    retry: "No hemos podido guardar tu elección en este momento. \
            Inténtalo de nuevo dentro de un minuto.",
};

impl Lang {
    /// Every language, English first.
    pub const ALL: [Lang; 6] = [Lang::En, Lang::De, Lang::Pl, Lang::Ru, Lang::Fr, Lang::Es];

    /// The language's BCP 47 tag (for `<html lang>`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Pl => "pl",
            Lang::Ru => "ru",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    /// The language's words.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
            Lang::Pl => &PL,
            Lang::Ru => &RU,
            Lang::Fr => &FR,
            Lang::Es => &ES,
        }
    }

    /// The language of a tag such as `de`, `pl-PL` or `ru_RU` (by its primary
    /// subtag), if the pages are written in it.
    fn of_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The language of a page: the message's (`language` or `lang` metadata) if the
    /// pages are written in it, else the most preferred one of `accept_language`
    /// (q-values respected, `q=0` meaning "not this"), else English.
    pub fn choose(message: Option<&str>, accept_language: Option<&str>) -> Lang {
        message
            .and_then(Lang::of_tag)
            .or_else(|| {
                accept_language.and_then(|a| postwerk_core::language::preferred(a, Lang::of_tag))
            })
            .unwrap_or(Lang::En)
    }
}

/// `template` with each `{name}` replaced by its value (already escaped for HTML).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of a table, by key.
    fn entries(s: &Strings) -> [(&'static str, &'static str); 13] {
        [
            ("title", s.title),
            ("intro", s.intro),
            ("intro_list", s.intro_list),
            ("leave_list", s.leave_list),
            ("stop_marketing", s.stop_marketing),
            ("withdraw", s.withdraw),
            ("done_title", s.done_title),
            ("left_list", s.left_list),
            ("marketing_stopped", s.marketing_stopped),
            ("withdrawn", s.withdrawn),
            ("back", s.back),
            ("retry_title", s.retry_title),
            ("retry", s.retry),
        ]
    }

    /// The placeholders a template uses, in order.
    fn placeholders(text: &str) -> Vec<&str> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn every_language_fills_every_key_with_the_same_placeholders() {
        let english = entries(Lang::En.strings());
        for lang in Lang::ALL {
            for ((key, text), (_, en)) in entries(lang.strings()).into_iter().zip(english) {
                assert!(!text.trim().is_empty(), "{lang:?} {key} is empty");
                let (mut ours, mut theirs) = (placeholders(text), placeholders(en));
                ours.sort_unstable();
                theirs.sort_unstable();
                assert_eq!(ours, theirs, "{lang:?} {key}: {text}");
                assert!(
                    !text.contains("  "),
                    "{lang:?} {key} has a double space: {text}"
                );
            }
            if lang != Lang::En {
                assert_ne!(lang.strings().title, EN.title, "{lang:?} is translated");
            }
        }
    }

    #[test]
    fn the_message_language_wins_then_accept_language_then_english() {
        let cases: &[(Option<&str>, Option<&str>, Lang)] = &[
            (None, None, Lang::En),
            (Some("pl"), Some("de"), Lang::Pl),
            (Some("pl_PL"), None, Lang::Pl),
            (Some("RU-ru"), None, Lang::Ru),
            (Some("ja"), Some("de-DE,de;q=0.9"), Lang::De),
            (None, Some("de-DE,de;q=0.9,en;q=0.8"), Lang::De),
            (None, Some("en;q=0.5, pl;q=0.9"), Lang::Pl),
            (None, Some("ja, fr;q=0.3, es;q=0.3"), Lang::Fr),
            (None, Some("*"), Lang::En),
            (None, Some("ru;q=0, de;q=0.1"), Lang::De),
            (None, Some("ru;q=2, de;q=0.1"), Lang::De),
            (None, Some("ru;q=x"), Lang::En),
            (None, Some("zh-CN"), Lang::En),
            (None, Some(""), Lang::En),
        ];
        for (message, accept, want) in cases {
            assert_eq!(
                Lang::choose(*message, *accept),
                *want,
                "{message:?} {accept:?}"
            );
        }
    }

    #[test]
    fn fill_replaces_every_placeholder() {
        assert_eq!(
            fill(EN.intro_list, &[("sender", "Shop"), ("list", "News")]),
            "You receive these emails from Shop through the list “News”."
        );
    }
}
