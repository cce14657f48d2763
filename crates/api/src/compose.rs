//! Validating a send request and rendering it into a [`Submission`]. Pure apart
//! from the domain-registration check, which the caller supplies.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use postwerk_core::address::{Address, Mailbox, MailboxInput};
use postwerk_core::id::new_id;
use postwerk_core::mime::{self, Attachment, MessageParts, MimeError};
use postwerk_core::rawmsg::{
    FromError, add_missing_ids, find_header_end, header_value, normalize_crlf, single_from,
};
use postwerk_mta::accept::{MessageMeta, Submission};
use postwerk_mta::tracking::links::{Clicks, Linker};
use postwerk_services::streams::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Most recipients (to + cc + bcc) in one message.
pub const MAX_RECIPIENTS: usize = 50;
/// Largest rendered message.
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;
const MAX_TAGS: usize = 10;
const MAX_TAG_LEN: usize = 64;
const MAX_METADATA_KEYS: usize = 20;

/// One or several mailboxes: `"a@b"` or `["a@b", {"email": …}]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Mailboxes {
    /// A single mailbox.
    One(MailboxInput),
    /// A list.
    Many(Vec<MailboxInput>),
}

impl Default for Mailboxes {
    fn default() -> Self {
        Mailboxes::Many(Vec::new())
    }
}

impl Mailboxes {
    /// The mailboxes as written.
    pub fn items(&self) -> &[MailboxInput] {
        match self {
            Mailboxes::One(m) => std::slice::from_ref(m),
            Mailboxes::Many(v) => v,
        }
    }
}

/// `POST /v1/messages` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Author.
    pub from: MailboxInput,
    /// Recipients.
    #[serde(default)]
    pub to: Mailboxes,
    /// Copy recipients.
    #[serde(default)]
    pub cc: Mailboxes,
    /// Blind copy recipients (not in the headers).
    #[serde(default)]
    pub bcc: Mailboxes,
    /// Reply-To.
    #[serde(default)]
    pub reply_to: Option<MailboxInput>,
    /// Subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Plain-text body.
    #[serde(default)]
    pub text: Option<String>,
    /// HTML body.
    #[serde(default)]
    pub html: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Attachments.
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// Stream (default `transactional`).
    #[serde(default)]
    pub stream: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Client metadata (string, number or boolean values).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Open and click tracking for this message (default: the stream's).
    #[serde(default)]
    pub track: Option<TrackInput>,
    /// A template (id or name) whose parts make the subject and bodies, instead of
    /// `subject`, `html` and `text` (see [`crate::templates::apply`]).
    #[serde(default)]
    pub template: Option<String>,
    /// The template's version (default: its current one).
    #[serde(default, deserialize_with = "postwerk_core::json::whole")]
    pub version: Option<u32>,
    /// The template's variables.
    #[serde(default)]
    pub variables: Option<Map<String, Value>>,
    /// Recipient ids made before composing, in recipient order (a template's
    /// per-recipient links name them); the rest are made when composing.
    #[serde(skip)]
    pub recipient_ids: Vec<String>,
    /// When to send it (RFC 3339, up to 30 days ahead); cancellable until then with
    /// `DELETE /v1/messages/{id}`.
    #[serde(default)]
    pub send_at: Option<String>,
}

/// `"track": {"opens": true, "clicks": "html"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInput {
    /// Add the open pixel to the HTML part.
    #[serde(default)]
    pub opens: Option<bool>,
    /// Which links to track: `html`, `text`, `all` or `none`.
    #[serde(default)]
    pub clicks: Option<String>,
}

/// An attachment in a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    /// File name.
    pub filename: String,
    /// MIME type.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Base64 content.
    pub content: String,
    /// Content-ID for inline use.
    #[serde(default)]
    pub content_id: Option<String>,
}

fn default_content_type() -> String {
    "application/octet-stream".into()
}

/// `POST /v1/messages/raw` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// Base64 of the RFC 5322 message.
    pub data: String,
    /// Stream (default `transactional`).
    #[serde(default)]
    pub stream: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Client metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// A validated submission and the JSON that describes it to the client.
pub struct Composed {
    /// What is stored.
    pub submission: Submission,
    /// `{"id", "recipients": [...]}`.
    pub response: Value,
}

/// Validates and renders a structured send. `ehlo_name` is the Message-ID domain;
/// with a `linker`, links and the open pixel are added as the stream and the message
/// ask.
pub fn compose(
    req: &SendRequest,
    ehlo_name: &str,
    linker: Option<&Linker<'_>>,
    streams: &[Arc<Stream>],
) -> Result<Composed, ApiError> {
    let from = req
        .from
        .parse()
        .map_err(|e| ApiError::invalid("invalid_address", "from", e.to_string()))?;
    let to = parse_list(&req.to, "to")?;
    let cc = parse_list(&req.cc, "cc")?;
    let bcc = parse_list(&req.bcc, "bcc")?;
    let reply_to = req
        .reply_to
        .as_ref()
        .map(|r| {
            r.parse()
                .map_err(|e| ApiError::invalid("invalid_address", "reply_to", e.to_string()))
        })
        .transpose()?;
    let recipients = unique_recipients(to.iter().chain(&cc).chain(&bcc).map(|m| &m.address))?;
    let stream = stream_named(req.stream.as_deref(), streams)?;
    let (tags, metadata) = check_tags_metadata(&req.tags, &req.metadata)?;
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, value) in &headers {
        mime::validate_header(name, value).map_err(|e| {
            ApiError::invalid("invalid_header", format!("headers.{name}"), e.to_string())
        })?;
    }
    let attachments = decode_attachments(&req.attachments)?;
    let send_at = req.send_at.as_deref().map(scheduled).transpose()?.flatten();
    let body_bytes = req.text.as_ref().map_or(0, String::len)
        + req.html.as_ref().map_or(0, String::len)
        + attachments.iter().map(|a| a.content.len()).sum::<usize>();
    check_size(body_bytes)?;
    let id = new_id("msg");
    let message_id = format!("{id}@{ehlo_name}");
    let subject = req.subject.clone().unwrap_or_default();
    let (text, html) = tracked_bodies(req, &stream, linker, &id)?;
    let parts = MessageParts {
        from: &from,
        to: &to,
        cc: &cc,
        reply_to: reply_to.as_ref(),
        subject: &subject,
        text: text.as_deref(),
        html: html.as_deref(),
        headers: &headers,
        attachments: &attachments,
        message_id: &message_id,
        date: send_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or_else(chrono::Utc::now),
    };
    let content = mime::render(&parts).map_err(mime_error)?;
    check_size(content.len())?;
    let mut meta = message_meta(&from, Some(subject), tags, metadata);
    meta.send_at = send_at;
    let stream = stream.name.clone();
    let ids = req.recipient_ids.clone();
    let mut composed = finish(id, stream, &from, content, None, meta, (recipients, ids));
    composed.submission.send_at = send_at;
    if let Some(at) = send_at {
        composed.response["send_at"] = json!(postwerk_mta::view::time(at));
    }
    Ok(composed)
}

/// Furthest ahead a message may be scheduled: 30 days.
pub const MAX_SCHEDULE_MS: i64 = 30 * 86_400_000;

/// A message's `send_at` (RFC 3339) as Unix ms: `None` when it is not in the future
/// (the message goes at once); `422 invalid_time` if it is not a time or more than 30
/// days ahead.
fn scheduled(text: &str) -> Result<Option<i64>, ApiError> {
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid("invalid_time", "send_at", "use RFC 3339"))?;
    let now = chrono::Utc::now().timestamp_millis();
    if at > now + MAX_SCHEDULE_MS {
        return Err(ApiError::invalid(
            "invalid_time",
            "send_at",
            "a message is scheduled at most 30 days ahead",
        ));
    }
    Ok((at > now).then_some(at))
}

/// Validates a raw send: the message must have a From header whose domain the
/// tenant sends from; Message-ID and Date are added when missing.
pub fn compose_raw(
    req: &RawRequest,
    ehlo_name: &str,
    streams: &[Arc<Stream>],
) -> Result<Composed, ApiError> {
    let mail_from = Address::parse(&req.mail_from)
        .map_err(|e| ApiError::invalid("invalid_address", "mail_from", e.to_string()))?;
    let rcpts = req
        .rcpt_to
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Address::parse(r).map_err(|e| {
                ApiError::invalid("invalid_address", format!("rcpt_to[{i}]"), e.to_string())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let recipients = unique_recipients(rcpts.iter()).map_err(|e| e.with_field("rcpt_to"))?;
    let stream = stream_named(req.stream.as_deref(), streams)?.name.clone();
    let (tags, metadata) = check_tags_metadata(&req.tags, &req.metadata)?;
    let decoded = B64
        .decode(req.data.trim())
        .map_err(|_| ApiError::invalid("invalid_base64", "data", "data is not valid base64"))?;
    check_size(decoded.len())?;
    // A receiver that drops NUL bytes could read `\r\n\0.\r\n` as the end of data and
    // take what follows as a second message (SMTP smuggling); SMTP refuses them too.
    if decoded.contains(&0) {
        return Err(ApiError::invalid(
            "nul_byte",
            "data",
            "the message contains a NUL byte",
        ));
    }
    let mut message = normalize_crlf(&decoded);
    let header_end = find_header_end(&message).ok_or_else(|| {
        ApiError::invalid(
            "invalid_message",
            "data",
            "no header/body separator (empty line)",
        )
    })?;
    let from = single_from(&message[..header_end]).map_err(|e| match e {
        FromError::Missing => ApiError::invalid("missing_from_header", "data", e.to_string()),
        FromError::MultipleHeaders | FromError::MultipleMailboxes => {
            ApiError::invalid("multiple_from", "data.From", e.to_string())
        }
        FromError::Invalid(a) => ApiError::invalid("invalid_address", "data.From", a.to_string()),
    })?;
    let id = new_id("msg");
    add_missing_ids(&mut message, header_end, &id, ehlo_name);
    let subject = header_value(&message, "subject");
    let meta = message_meta(&from, subject, tags, metadata);
    Ok(finish(
        id,
        stream,
        &from,
        message,
        Some(mail_from),
        meta,
        (recipients, Vec::new()),
    ))
}

/// The fuzz entry for the send request types (`fuzz/fuzz_targets/api_json.rs`, and the
/// corpus replay in `tests/fuzz_corpora.rs`): a request body is decoded the way
/// [`ApiJson`](crate::error::ApiJson) decodes it (JSON, then the strict decoder) into
/// [`SendRequest`] and [`RawRequest`], and whatever decodes is composed against the
/// built-in streams. Any outcome but a panic is fine.
#[doc(hidden)]
pub fn fuzz_requests(body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let streams = builtin_streams();
    if let Ok(req) = crate::strict::from_value::<SendRequest>(&value) {
        let _ = compose(&req, "mta.example.com", None, &streams);
    }
    if let Ok(req) = crate::strict::from_value::<RawRequest>(&value) {
        let _ = compose_raw(&req, "mta.example.com", &streams);
    }
}

/// The built-in streams as a new tenant has them.
fn builtin_streams() -> Vec<Arc<Stream>> {
    postwerk_core::model::DEFAULT_STREAMS
        .iter()
        .map(|n| Arc::new(Stream::initial(n)))
        .collect()
}

fn message_meta(
    from: &Mailbox,
    subject: Option<String>,
    tags: Vec<String>,
    metadata: Map<String, Value>,
) -> MessageMeta {
    MessageMeta {
        subject,
        from: Some(from.address.to_string()),
        tags,
        metadata,
        send_at: None,
    }
}

/// The composed message; its recipients get the ids given with them, in order (the
/// rest new ones).
fn finish(
    id: String,
    stream: String,
    from: &Mailbox,
    content: Vec<u8>,
    mail_from: Option<Address>,
    meta: MessageMeta,
    (recipients, ids): (Vec<Address>, Vec<String>),
) -> Composed {
    let mut ids = ids.into_iter();
    let recipients: Vec<(String, Address)> = recipients
        .into_iter()
        .map(|a| (ids.next().unwrap_or_else(|| new_id("rcpt")), a))
        .collect();
    let response = json!({
        "id": id,
        "recipients": recipients.iter().map(|(rid, a)| json!({"email": a.to_string(), "id": rid, "status": "queued"})).collect::<Vec<_>>(),
    });
    Composed {
        submission: Submission {
            id,
            stream,
            from_domain: from.address.domain().to_string(),
            content,
            mail_from,
            meta,
            recipients,
            held: Default::default(),
            erased: Default::default(),
            broadcast_id: None,
            send_at: None,
        },
        response,
    }
}

fn parse_list(list: &Mailboxes, field: &str) -> Result<Vec<Mailbox>, ApiError> {
    list.items()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.parse().map_err(|e| {
                ApiError::invalid("invalid_address", format!("{field}[{i}]"), e.to_string())
            })
        })
        .collect()
}

fn unique_recipients<'a>(all: impl Iterator<Item = &'a Address>) -> Result<Vec<Address>, ApiError> {
    let mut seen = HashSet::new();
    let unique: Vec<Address> = all
        .filter(|a| seen.insert(a.normalized()))
        .cloned()
        .collect();
    if unique.is_empty() {
        return Err(ApiError::invalid(
            "no_recipients",
            "to",
            "at least one recipient is required",
        ));
    }
    if unique.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid(
            "too_many_recipients",
            "to",
            format!(
                "at most {MAX_RECIPIENTS} recipients per message (to + cc + bcc); use the batch endpoint"
            ),
        ));
    }
    Ok(unique)
}

/// The text and HTML bodies of message `id` with tracking applied.
fn tracked_bodies(
    req: &SendRequest,
    stream: &Stream,
    linker: Option<&Linker<'_>>,
    id: &str,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let track = req.track.as_ref();
    let clicks = track
        .and_then(|t| t.clicks.as_deref())
        .map(|c| {
            Clicks::parse(c).ok_or_else(|| {
                ApiError::invalid(
                    "invalid_track",
                    "track.clicks",
                    "use html, text, all or none",
                )
            })
        })
        .transpose()?;
    let Some(linker) = linker else {
        return Ok((req.text.clone(), req.html.clone()));
    };
    let t = linker.track(stream, track.and_then(|t| t.opens), clicks);
    Ok((
        req.text.as_deref().map(|x| linker.text(x, t, id)),
        req.html.as_deref().map(|h| linker.html(h, t, id)),
    ))
}

/// The stream a message names (default `transactional`) among the tenant's.
fn stream_named(requested: Option<&str>, streams: &[Arc<Stream>]) -> Result<Arc<Stream>, ApiError> {
    let name = requested.unwrap_or("transactional");
    streams
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(crate::streams::unknown_stream)
}

type TagsAndMetadata = (Vec<String>, Map<String, Value>);

fn check_tags_metadata(
    tags: &[String],
    metadata: &Map<String, Value>,
) -> Result<TagsAndMetadata, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "too_many_tags",
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.chars().count() > MAX_TAG_LEN || t.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "invalid_tag",
                format!("tags[{i}]"),
                format!("tags are 1–{MAX_TAG_LEN} characters of printable text"),
            ));
        }
    }
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(ApiError::invalid(
            "invalid_metadata",
            "metadata",
            format!("at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    if let Some((k, _)) = metadata
        .iter()
        .find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
    {
        return Err(ApiError::invalid(
            "invalid_metadata",
            format!("metadata.{k}"),
            "metadata values must be strings, numbers or booleans",
        ));
    }
    Ok((tags.to_vec(), metadata.clone()))
}

fn decode_attachments(inputs: &[AttachmentInput]) -> Result<Vec<Attachment>, ApiError> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let content = B64.decode(a.content.trim()).map_err(|_| {
                ApiError::invalid(
                    "invalid_attachment",
                    format!("attachments[{i}].content"),
                    "content is not valid base64",
                )
            })?;
            Ok(Attachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                content,
                content_id: a.content_id.clone(),
            })
        })
        .collect()
}

fn mime_error(e: MimeError) -> ApiError {
    let (code, field) = match &e {
        MimeError::NoBody => ("no_content", "text".to_string()),
        MimeError::ReservedHeader(h) | MimeError::BadHeaderValue(h) => {
            ("invalid_header", format!("headers.{h}"))
        }
        MimeError::BadHeaderName => ("invalid_header", "headers".to_string()),
        MimeError::BadContentType | MimeError::BadFilename | MimeError::BadContentId => {
            ("invalid_attachment", "attachments".to_string())
        }
    };
    ApiError::invalid(code, field, e.to_string())
}

fn check_size(len: usize) -> Result<(), ApiError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(ApiError::invalid(
            "message_too_large",
            "message",
            "the message exceeds 25 MB",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> SendRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn composes_a_full_request() {
        let r = req(json!({
            "from": "Alice <alice@example.com>",
            "to": ["bob@example.test", {"email": "carol@example.test", "name": "Carol"}],
            "cc": [], "bcc": ["dave@example.test"], "reply_to": "help@example.com",
            "subject": "Welcome", "text": "hi", "html": "<p>hi</p>",
            "headers": {"X-Course": "42"},
            "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "content": "JVBERi0=", "content_id": null}],
            "stream": "transactional", "tags": ["welcome"], "metadata": {"user": "7"}
        }));
        let c = compose(&r, "mta.example.com", None, &builtin_streams()).unwrap();
        assert_eq!(c.submission.recipients.len(), 3);
        assert_eq!(c.submission.from_domain, "example.com");
        let text = String::from_utf8_lossy(&c.submission.content);
        assert!(text.contains("X-Course: 42"));
        assert!(!text.contains("dave@"), "bcc must not appear in headers");
        assert_eq!(c.response["recipients"][1]["email"], "carol@example.test");
        assert_eq!(c.response["recipients"][0]["status"], "queued");
    }

    #[test]
    fn refuses_bad_input_with_codes_and_fields() {
        let cases = [
            (
                json!({"from": "x", "to": ["bob@example.test"], "text": "t"}),
                "invalid_address",
                "from",
            ),
            (
                json!({"from": "a@example.com", "to": ["ok@example.test", "not an address"], "text": "t"}),
                "invalid_address",
                "to[1]",
            ),
            (
                json!({"from": "a@example.com", "to": [], "text": "t"}),
                "no_recipients",
                "to",
            ),
            (
                json!({"from": "a@example.com", "to": ["b@example.test"]}),
                "no_content",
                "text",
            ),
            (
                json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "stream": "nope"}),
                "unknown_stream",
                "stream",
            ),
            (
                json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "track": {"clicks": "some"}}),
                "invalid_track",
                "track.clicks",
            ),
            (
                json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "headers": {"Bcc": "x@y.z"}}),
                "invalid_header",
                "headers.Bcc",
            ),
            (
                json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "attachments": [{"filename": "a", "content": "!!"}]}),
                "invalid_attachment",
                "attachments[0].content",
            ),
            (
                json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "metadata": {"k": {"nested": 1}}}),
                "invalid_metadata",
                "metadata.k",
            ),
        ];
        for (body, code, field) in cases {
            let err = compose(&req(body.clone()), "h.example", None, &builtin_streams())
                .err()
                .unwrap_or_else(|| panic!("{body} accepted"));
            assert_eq!(
                (err.code, err.field.as_deref()),
                (code, Some(field)),
                "{body}"
            );
        }
        let many: Vec<String> = (0..51).map(|i| format!("r{i}@example.test")).collect();
        let err = compose(
            &req(json!({"from": "a@example.com", "to": many, "text": "t"})),
            "h.example",
            None,
            &builtin_streams(),
        )
        .err()
        .unwrap();
        assert_eq!(err.code, "too_many_recipients");
    }

    #[test]
    fn duplicate_recipients_are_sent_once() {
        let r = req(
            json!({"from": "a@example.com", "to": ["B@example.test"], "cc": ["b@EXAMPLE.test"], "text": "t"}),
        );
        assert_eq!(
            compose(&r, "h.example", None, &builtin_streams())
                .unwrap()
                .submission
                .recipients
                .len(),
            1
        );
    }

    #[test]
    fn raw_messages_get_crlf_message_id_and_date() {
        let data = B64.encode("From: Alice <alice@example.com>\nSubject: Hi\n\nbody\n");
        let r: RawRequest = serde_json::from_value(json!({"mail_from": "alice@example.com", "rcpt_to": ["bob@example.test"], "data": data})).unwrap();
        let c = compose_raw(&r, "mta.example.com", &builtin_streams()).unwrap();
        let text = String::from_utf8(c.submission.content.clone()).unwrap();
        assert!(text.starts_with("Message-ID: <msg_"), "{text}");
        assert!(
            text.contains("\r\nDate: ") && text.ends_with("\r\nbody\r\n"),
            "{text}"
        );
        assert_eq!(c.submission.from_domain, "example.com");
        assert_eq!(c.submission.meta.subject.as_deref(), Some("Hi"));
        let bad: RawRequest = serde_json::from_value(json!({"mail_from": "a@example.com", "rcpt_to": ["b@example.test"], "data": B64.encode("Subject: x\n\nb")})).unwrap();
        assert_eq!(
            compose_raw(&bad, "h.example", &builtin_streams())
                .err()
                .unwrap()
                .code,
            "missing_from_header"
        );
    }

    #[test]
    fn raw_messages_need_exactly_one_from_mailbox() {
        for message in [
            "From: a@example.com\nFrom: b@evil.test\nSubject: x\n\nb\n",
            "From: b@evil.test, Alice <a@example.com>\nSubject: x\n\nb\n",
        ] {
            let r: RawRequest = serde_json::from_value(json!({"mail_from": "a@example.com", "rcpt_to": ["b@example.test"], "data": B64.encode(message)})).unwrap();
            let e = compose_raw(&r, "h.example", &builtin_streams())
                .err()
                .unwrap();
            assert_eq!(
                (e.code, e.status.as_u16()),
                ("multiple_from", 422),
                "{message}"
            );
        }
    }

    #[test]
    fn raw_messages_with_nul_bytes_are_refused() {
        for message in [
            "From: a@example.com\nSubject: x\n\nbefore\r\n\0.\r\nafter\n",
            "From: a@example.com\nSubject: x\n\nbefore\r\n.\0\r\nafter\n",
        ] {
            let r: RawRequest = serde_json::from_value(json!({"mail_from": "a@example.com", "rcpt_to": ["b@example.test"], "data": B64.encode(message)})).unwrap();
            let e = compose_raw(&r, "h.example", &builtin_streams())
                .err()
                .unwrap();
            assert_eq!((e.code, e.status.as_u16()), ("nul_byte", 422));
        }
    }

    /// Every committed fuzz corpus file decodes and composes without panicking.
    #[test]
    fn replays_the_fuzz_corpus() {
        for (path, data) in fuzz_corpus("api_json") {
            eprintln!("{}", path.display());
            fuzz_requests(&data);
        }
    }

    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus.rs"));
}
