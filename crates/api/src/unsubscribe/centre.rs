//! What an unsubscribe link offers the person it was sent to: who sent the message
//! and through which list, the purposes they have consented to, and the choices
//! that act on them. Every choice leaves a consent record with source
//! [`SOURCE`] and the click's address and user agent.

use postwerk_core::address::Address;
use postwerk_core::model::ConsentStatus;
use postwerk_mta::accept::MessageMeta;
use postwerk_mta::unsubscribe;
use postwerk_privacy::audience::lists::{self, ListError};
use postwerk_privacy::contacts::{self, ConsentEvidence};
use postwerk_services::context::{ServiceError, Services};
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::{ListRecord, RecipientRef};
use postwerk_store::prelude::*;
use serde_json::Value;

use crate::view;

/// The `source` of every consent record the preference centre writes (and of the
/// `unsubscribed` event of its "stop all marketing mail").
pub const SOURCE: &str = "preference_centre";

/// The consent purpose that stands for membership of a list: leaving the list is
/// recorded as its withdrawal.
fn list_purpose(list: &ListRecord) -> String {
    format!("list:{}", list.id)
}

/// One person's preference centre, reached through the token of a message sent to
/// them.
pub struct Preferences {
    recipient: RecipientRef,
    keys: SubjectKeys,
    /// The person's address; `None` once they are erased.
    address: Option<Address>,
    /// Who sent the message: the From display name or domain, else the tenant's name.
    pub sender: String,
    /// The list the message went to (its `list` metadata, an id or a name), if it is
    /// one of the tenant's.
    pub list: Option<ListRecord>,
    /// Whether the person is on that list (then leaving it is a choice).
    member: bool,
    /// The purposes the person has active consent for, oldest first (list purposes
    /// are left out: leaving the list is their choice).
    pub purposes: Vec<String>,
    /// The language the message was written in (`language` or `lang` metadata).
    pub language: Option<String>,
}

/// What the person chose on the page (the form field `choice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `list`: leave the message's list.
    List,
    /// `marketing`: stop the message's stream and withdraw its consent purpose.
    Marketing,
    /// `purpose:<name>`: withdraw consent for one purpose.
    Purpose(String),
}

impl Choice {
    /// The choice a form value names, if any.
    pub fn parse(value: &str) -> Option<Choice> {
        match value {
            "list" => Some(Choice::List),
            "marketing" => Some(Choice::Marketing),
            _ => value
                .strip_prefix("purpose:")
                .filter(|p| !p.is_empty())
                .map(|p| Choice::Purpose(p.to_string())),
        }
    }

    /// The form value of the choice.
    pub fn value(&self) -> String {
        match self {
            Choice::List => "list".into(),
            Choice::Marketing => "marketing".into(),
            Choice::Purpose(p) => format!("purpose:{p}"),
        }
    }
}

impl Preferences {
    /// The preference centre of a genuine token; `None` for one that is malformed,
    /// forged or names no recipient.
    pub async fn open(services: &Services, token: &str) -> Result<Option<Self>, ServiceError> {
        let Some((recipient, keys)) = unsubscribe::recipient_of(services, token, false).await?
        else {
            return Ok(None);
        };
        let r = &recipient;
        let address = view::address(&r.id, &r.rcpt_hash, &r.address_enc, &keys)
            .and_then(|a| Address::parse(&a).ok());
        let meta = match services
            .store
            .get_message(&r.tenant_id, &r.message_id)
            .await?
        {
            Some(m) => view::meta(&m.id, Some(&r.rcpt_hash), &m.meta_enc, &keys),
            None => MessageMeta::default(),
        };
        let sender = match meta.from.as_deref().and_then(sender_name) {
            Some(name) => name,
            None => tenant_name(services, &r.tenant_id).await?,
        };
        let list = match text(&meta, &["list"]) {
            Some(key) => match lists::find(services, &r.tenant_id, key).await {
                Ok(found) => Some(found.list),
                Err(ListError::Service(e)) => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        let member = match &list {
            Some(list) => {
                let on = services.store.subject_lists(&r.tenant_id, &r.rcpt_hash);
                on.await?.iter().any(|l| l.list.id == list.id)
            }
            None => false,
        };
        let purposes = match &address {
            Some(a) => active_purposes(services, &r.tenant_id, a).await?,
            None => Vec::new(),
        };
        Ok(Some(Preferences {
            language: text(&meta, &["language", "lang"]).map(str::to_string),
            sender,
            list,
            member,
            purposes,
            address,
            keys,
            recipient,
        }))
    }

    /// The choices the page offers, in its order.
    pub fn choices(&self) -> Vec<Choice> {
        let list = self.member.then_some(Choice::List);
        let purposes = self.purposes.iter().cloned().map(Choice::Purpose);
        list.into_iter()
            .chain([Choice::Marketing])
            .chain(purposes)
            .collect()
    }

    /// Carries out `choice`, recording it with `evidence` (its source set to
    /// [`SOURCE`]); `false` if the page does not offer it (nothing done).
    pub async fn apply(
        &self,
        services: &Services,
        choice: &Choice,
        evidence: ConsentEvidence,
    ) -> Result<bool, ServiceError> {
        if !self.choices().contains(choice) {
            return Ok(false);
        }
        let evidence = ConsentEvidence {
            source: Some(SOURCE.into()),
            ..evidence
        };
        let tenant = &self.recipient.tenant_id;
        match choice {
            Choice::List => {
                let (Some(list), Some(address)) = (&self.list, &self.address) else {
                    return Ok(true);
                };
                // The recipient's blind index is the person's: no address needed.
                let person = vec![self.recipient.rcpt_hash.clone()];
                services
                    .store
                    .remove_members(tenant, &list.id, person)
                    .await?;
                let purpose = list_purpose(list);
                contacts::add_consent(
                    services,
                    tenant,
                    address,
                    &purpose,
                    ConsentStatus::Withdrawn,
                    None,
                    &evidence,
                )
                .await?;
            }
            Choice::Marketing => {
                unsubscribe::suppress(services, &self.recipient, &self.keys, SOURCE).await?;
                let gated = services
                    .config
                    .privacy
                    .consent_required
                    .get(&self.recipient.stream);
                if let (Some(purpose), Some(address)) = (gated, &self.address) {
                    contacts::withdraw(services, tenant, address, purpose, &evidence).await?;
                }
            }
            Choice::Purpose(purpose) => {
                if let Some(address) = &self.address {
                    contacts::withdraw(services, tenant, address, purpose, &evidence).await?;
                }
            }
        }
        tracing::info!(
            recipient_id = %self.recipient.id,
            choice = %choice.value(),
            "preference centre choice recorded"
        );
        Ok(true)
    }
}

/// The first of `keys` the message's metadata holds as non-empty text.
fn text<'a>(meta: &'a MessageMeta, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| meta.metadata.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// How a From value names its sender: the display name of `Name <address>`, else
/// the address's domain.
fn sender_name(from: &str) -> Option<String> {
    let (name, address) = match from.rsplit_once('<') {
        Some((name, rest)) => (name, rest.trim_end().trim_end_matches('>')),
        None => ("", from),
    };
    let name = name.trim().trim_matches('"').trim();
    if !name.is_empty() {
        return Some(name.to_string());
    }
    Address::parse(address.trim())
        .ok()
        .map(|a| a.domain().to_string())
}

/// The tenant's name (for a message whose sender cannot be read).
async fn tenant_name(services: &Services, tenant_id: &str) -> Result<String, ServiceError> {
    let tenant = services.store.get_tenant(tenant_id).await?;
    Ok(tenant.map(|t| t.name).unwrap_or_default())
}

/// The purposes `address` has active consent for, list purposes left out.
async fn active_purposes(
    services: &Services,
    tenant_id: &str,
    address: &Address,
) -> Result<Vec<String>, ServiceError> {
    let history = contacts::consents(services, tenant_id, address).await?;
    Ok(contacts::current(&history)
        .into_iter()
        .filter(|c| c.status == ConsentStatus::Active && !c.purpose.starts_with("list:"))
        .map(|c| c.purpose.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_from_their_form_values() {
        for choice in [
            Choice::List,
            Choice::Marketing,
            Choice::Purpose("newsletter".into()),
        ] {
            assert_eq!(Choice::parse(&choice.value()), Some(choice));
        }
        for bad in ["", "purpose:", "lists", "List-Unsubscribe"] {
            assert_eq!(Choice::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_sender_is_the_display_name_else_the_domain() {
        let cases = [
            ("news@example.com", Some("example.com")),
            ("Example Shop <news@example.com>", Some("Example Shop")),
            ("\"Shop, Inc.\" <news@example.com>", Some("Shop, Inc.")),
            ("<news@Example.COM>", Some("example.com")),
            ("not an address", None),
        ];
        for (from, want) in cases {
            assert_eq!(sender_name(from).as_deref(), want, "{from}");
        }
    }
}
