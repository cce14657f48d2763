//! Turning a received message into a [`Submission`]: read and remove the
//! `X-Postwerk-*` headers, find the From domain, add Message-ID/Date when missing.
//! Pure; the From-domain registration check belongs to the [`Backend`](crate::backend::Backend).

use postwerk_core::address::Address;
use postwerk_core::id::new_id;
use postwerk_core::model::is_stream_name;
use postwerk_core::rawmsg::{
    FromError, add_missing_ids, find_header_end, header_value, remove_header, single_from,
};
use postwerk_mta::accept::{MessageMeta, Submission};

use crate::reply::{self, Reply};

const MAX_TAGS: usize = 10;
const MAX_TAG_LEN: usize = 64;

/// Who a message is submitted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Tenant id (`ten_…`).
    pub tenant_id: String,
    /// Default stream for this client's mail.
    pub stream: String,
    /// Who is submitting, for rate limits: `key:<key id>` or `network:<cidr>`.
    pub principal: String,
    /// The API key's own rate limit, if it has one.
    pub rate_limit: Option<u32>,
}

/// Builds the submission for a CRLF message received over SMTP.
pub fn prepare(
    mut content: Vec<u8>,
    identity: &Identity,
    mail_from: Option<Address>,
    recipients: Vec<Address>,
    host: &str,
) -> Result<Submission, Reply> {
    let mut header_end = find_header_end(&content).unwrap_or(content.len());
    let from = single_from(&content[..header_end]).map_err(|e| match e {
        FromError::MultipleHeaders | FromError::MultipleMailboxes => reply::MULTIPLE_FROM,
        FromError::Missing | FromError::Invalid(_) => reply::NO_FROM,
    })?;
    let stream = match header_value(&content[..header_end], "x-postwerk-stream") {
        Some(s) if is_stream_name(&s) => s,
        Some(_) => return Err(reply::BAD_POSTWERK_HEADER),
        None => identity.stream.clone(),
    };
    let tags: Vec<String> = header_value(&content[..header_end], "x-postwerk-tags")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if tags.len() > MAX_TAGS
        || tags
            .iter()
            .any(|t| t.len() > MAX_TAG_LEN || t.chars().any(char::is_control))
    {
        return Err(reply::BAD_POSTWERK_HEADER);
    }
    header_end = remove_header(&mut content, header_end, "x-postwerk-stream");
    header_end = remove_header(&mut content, header_end, "x-postwerk-tags");
    let id = new_id("msg");
    header_end = add_missing_ids(&mut content, header_end, &id, host);
    let subject = header_value(&content[..header_end], "subject");
    let mut seen = std::collections::HashSet::new();
    let recipients = recipients
        .into_iter()
        .filter(|a| seen.insert(a.normalized()))
        .map(|a| (new_id("rcpt"), a))
        .collect();
    Ok(Submission {
        id,
        stream,
        from_domain: from.address.domain().to_ascii_lowercase(),
        content,
        mail_from,
        meta: MessageMeta {
            subject,
            from: Some(from.address.to_string()),
            tags,
            metadata: Default::default(),
            send_at: None,
        },
        recipients,
        held: Default::default(),
        erased: Default::default(),
        broadcast_id: None,
        send_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            tenant_id: "ten_1".into(),
            stream: "transactional".into(),
            principal: "key:key_1".into(),
            rate_limit: None,
        }
    }

    #[test]
    fn reads_and_removes_postwerk_headers() {
        let raw = b"From: A <a@Example.com>\r\nX-Postwerk-Stream: broadcast\r\nX-Postwerk-Tags: x, y\r\nSubject: S\r\n\r\nbody\r\n";
        let rcpt = Address::parse("b@example.test").unwrap();
        let s = prepare(
            raw.to_vec(),
            &id(),
            None,
            vec![rcpt.clone(), rcpt],
            "h.test",
        )
        .unwrap();
        let text = String::from_utf8(s.content).unwrap();
        assert!(!text.contains("X-Postwerk"), "{text}");
        assert!(text.starts_with("Message-ID: <msg_") && text.contains("\r\nDate: "));
        assert!(text.ends_with("Subject: S\r\n\r\nbody\r\n"), "{text}");
        assert_eq!(
            (s.stream.as_str(), s.from_domain.as_str()),
            ("broadcast", "example.com")
        );
        assert_eq!(s.meta.tags, ["x", "y"]);
        assert_eq!(s.recipients.len(), 1);
    }

    #[test]
    fn refuses_bad_messages() {
        let cases: &[(&[u8], Reply)] = &[
            (b"Subject: x\r\n\r\nb\r\n", reply::NO_FROM),
            (b"From: nobody\r\n\r\nb\r\n", reply::NO_FROM),
            (
                b"From: a@example.com\r\nFrom: b@evil.test\r\n\r\nb\r\n",
                reply::MULTIPLE_FROM,
            ),
            (
                b"From: b@evil.test, A <a@example.com>\r\n\r\nb\r\n",
                reply::MULTIPLE_FROM,
            ),
            (
                b"From: a@example.com\r\nX-Postwerk-Stream: Bulk mail\r\n\r\nb\r\n",
                reply::BAD_POSTWERK_HEADER,
            ),
        ];
        for (raw, want) in cases {
            let got = prepare(raw.to_vec(), &id(), None, vec![], "h.test").err();
            assert_eq!(got, Some(*want));
        }
        // Headers only, no body: still a message.
        assert!(
            prepare(
                b"From: a@example.com\r\n".to_vec(),
                &id(),
                None,
                vec![],
                "h"
            )
            .is_ok()
        );
    }
}
