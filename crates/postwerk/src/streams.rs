//! `postwerk streams …` and `postwerk queue …`: streams and the delivery queue from
//! the command line (the same operations as `/v1/streams` and `/v1/queue`, audited
//! as `cli`).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use postwerk_core::config::Config;
use postwerk_core::stream::StreamSettings;
use postwerk_services::audit::Actor;
use postwerk_services::context::{DEFAULT_TENANT, Services, now_ms};
use postwerk_services::streams::{self, ChangedBy, Stream};
use postwerk_store::model::{QueueAction, QueueSelector};
use postwerk_store::prelude::*;
use serde_json::{Value, json};

use postwerk_api::streams::stream_json;

use crate::cli::{open, tenant_for};

/// `postwerk streams …`.
#[derive(Subcommand)]
pub enum StreamsCommand {
    /// List the tenant's streams with their settings and state.
    List {
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a stream.
    Add(StreamArgs),
    /// Change a stream's settings (only the options given).
    Update(StreamArgs),
    /// Pause a stream: its waiting mail is held, new mail is rejected.
    Pause {
        /// The stream.
        name: String,
        /// Why (shown on the stream and in its `stream_paused` event).
        #[arg(long, default_value = "paused by an operator")]
        reason: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Resume a paused stream: its held mail is queued again.
    Resume {
        /// The stream.
        name: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

/// A stream and the settings to give it.
#[derive(Args)]
pub struct StreamArgs {
    /// Stream name (1–32 of a-z, 0-9, `_`, `-`).
    name: String,
    /// 0 (served first) to 9.
    #[arg(long)]
    priority: Option<u8>,
    /// Percent of `delivery.max_connections` kept for this stream (0–90).
    #[arg(long)]
    reserved_share: Option<u8>,
    /// Egress pool.
    #[arg(long)]
    pool: Option<String>,
    /// Retry schedule, e.g. `5m,30m,2h` (the last interval repeats).
    #[arg(long, value_delimiter = ',')]
    retry: Option<Vec<String>>,
    /// How long mail is retried before it expires, e.g. `2d`.
    #[arg(long)]
    max_age: Option<String>,
    /// Open tracking by default.
    #[arg(long)]
    track_opens: Option<bool>,
    /// Click tracking by default: html, text, all or none.
    #[arg(long)]
    track_clicks: Option<String>,
    /// One-click unsubscribe headers.
    #[arg(long)]
    unsubscribe: Option<bool>,
    /// Tenant, made by `tenants create` (default: the install's default tenant).
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
}

impl StreamArgs {
    /// `base` with the options given on top.
    fn settings(&self, base: &StreamSettings) -> anyhow::Result<StreamSettings> {
        let Value::Object(mut m) = serde_json::to_value(base)? else {
            bail!("stream settings do not serialise");
        };
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        set("priority", self.priority.map(Value::from));
        set("reserved_share", self.reserved_share.map(Value::from));
        set("pool", self.pool.clone().map(Value::from));
        set("retry", self.retry.clone().map(Value::from));
        set("max_age", self.max_age.clone().map(Value::from));
        set("track_opens", self.track_opens.map(Value::from));
        set("track_clicks", self.track_clicks.clone().map(Value::from));
        set("unsubscribe", self.unsubscribe.map(Value::from));
        serde_json::from_value(Value::Object(m)).context("stream settings")
    }
}

fn print_streams(list: &[std::sync::Arc<Stream>], as_json: bool) {
    if as_json {
        let all: Vec<Value> = list.iter().map(|s| stream_json(s)).collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return;
    }
    println!("NAME\tPRIORITY\tRESERVED\tPOOL\tSTATE");
    for s in list {
        let state = match &s.pause_reason {
            Some(r) if s.is_paused() => format!("paused: {r}"),
            _ => "active".into(),
        };
        let pool = s.settings.pool.as_deref().unwrap_or("-");
        let (priority, share) = (s.settings.priority, s.settings.reserved_share);
        println!("{}\t{priority}\t{share}%\t{pool}\t{state}", s.name);
    }
}

/// `postwerk streams …`.
pub async fn streams(cmd: StreamsCommand, config: Config) -> anyhow::Result<()> {
    let services = open(config).await?;
    let cli = Actor::cli();
    let stream = match cmd {
        StreamsCommand::List { tenant, json } => {
            let tenant = tenant_for(&services, &tenant).await?;
            print_streams(&services.streams.list(&tenant.id), json);
            return Ok(());
        }
        StreamsCommand::Add(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let settings = a.settings(&StreamSettings::default())?;
            audit(&services, &tenant.id, "stream.create", &a.name).await?;
            streams::create(
                &services,
                &tenant.id,
                &a.name,
                settings,
                ChangedBy::Operator,
            )
            .await?
        }
        StreamsCommand::Update(a) => {
            let tenant = tenant_for(&services, &a.tenant).await?;
            let Some(current) = services.streams.get(&tenant.id, &a.name) else {
                bail!("unknown stream `{}`", a.name);
            };
            let settings = a.settings(&current.settings)?;
            audit(&services, &tenant.id, "stream.update", &a.name).await?;
            streams::update(
                &services,
                &tenant.id,
                &a.name,
                settings,
                ChangedBy::Operator,
            )
            .await?
        }
        StreamsCommand::Pause {
            name,
            reason,
            tenant,
        } => {
            let tenant = tenant_for(&services, &tenant).await?;
            audit(&services, &tenant.id, "stream.pause", &name).await?;
            let detail = json!({"reason": reason, "by": cli.id});
            streams::set_paused(&services, &tenant.id, &name, Some(reason), detail)
                .await?
                .0
        }
        StreamsCommand::Resume { name, tenant } => {
            let tenant = tenant_for(&services, &tenant).await?;
            audit(&services, &tenant.id, "stream.resume", &name).await?;
            let detail = json!({"by": cli.id});
            streams::set_paused(&services, &tenant.id, &name, None, detail)
                .await?
                .0
        }
    };
    print_streams(&[stream], false);
    Ok(())
}

async fn audit(
    services: &Services,
    tenant_id: &str,
    action: &str,
    name: &str,
) -> anyhow::Result<()> {
    crate::cli::audited(services, Some(tenant_id), action, format!("stream:{name}")).await
}

/// `postwerk queue …`.
#[derive(Subcommand)]
pub enum QueueCommand {
    /// Waiting mail by tenant, stream, domain and status, with the oldest message's age.
    Ls {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make deferred mail due now.
    Retry(QueueFilter),
    /// Hold queued and deferred mail (mail being delivered right now is not held).
    Suspend(QueueFilter),
    /// Queue suspended mail again, due now.
    Resume(QueueFilter),
    /// Give up on waiting mail: it bounces (event `bounced`) and is never sent.
    Bounce(QueueFilter),
}

/// Which waiting mail a queue operation touches. At least one filter is required.
#[derive(Args)]
pub struct QueueFilter {
    /// Tenant name (made by `tenants create`).
    #[arg(long)]
    tenant: Option<String>,
    /// Stream.
    #[arg(long)]
    stream: Option<String>,
    /// Recipient domain (an international one in either form).
    #[arg(long)]
    domain: Option<String>,
    /// Message id (`msg_…`).
    #[arg(long)]
    message: Option<String>,
}

/// `postwerk queue …`.
pub async fn queue(cmd: QueueCommand, config: Config) -> anyhow::Result<()> {
    let services = open(config).await?;
    let (filter, action) = match cmd {
        QueueCommand::Ls { tenant, json } => return list(&services, tenant, json).await,
        QueueCommand::Retry(f) => (f, QueueAction::Retry),
        QueueCommand::Suspend(f) => (f, QueueAction::Suspend),
        QueueCommand::Resume(f) => (f, QueueAction::Resume),
        QueueCommand::Bounce(f) => (f, QueueAction::Bounce),
    };
    if filter.tenant.is_none()
        && filter.stream.is_none()
        && filter.domain.is_none()
        && filter.message.is_none()
    {
        bail!("name what to act on: --tenant, --stream, --domain and/or --message");
    }
    let tenant_id = match &filter.tenant {
        Some(name) => Some(tenant_for(&services, name).await?.id),
        None => None,
    };
    let selector = QueueSelector {
        tenant_id: tenant_id.clone(),
        stream: filter.stream,
        domain: filter
            .domain
            .as_deref()
            .map(postwerk_core::address::normalize_domain)
            .transpose()
            .context("--domain")?,
        message_id: filter.message,
    };
    let name = postwerk_mta::queue_ops::action_name(action);
    let target = postwerk_mta::queue_ops::describe(&selector);
    crate::cli::audited(
        &services,
        tenant_id.as_deref(),
        &format!("queue.{name}"),
        target,
    )
    .await?;
    let n = services
        .store
        .queue_action(selector, action, now_ms())
        .await?;
    println!("{name}: {n} recipient(s)");
    Ok(())
}

async fn list(services: &Services, tenant: Option<String>, as_json: bool) -> anyhow::Result<()> {
    let tenant_id = match tenant {
        Some(name) => Some(tenant_for(services, &name).await?.id),
        None => None,
    };
    let view = postwerk_mta::queue_ops::view(services, tenant_id.as_deref()).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!("TENANT\tSTREAM\tDOMAIN\tSTATUS\tRECIPIENTS\tOLDEST");
    let groups = view["groups"].as_array().cloned().unwrap_or_default();
    for g in &groups {
        let field = |k: &str| g[k].as_str().map(str::to_string).unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}s",
            field("tenant"),
            field("stream"),
            field("domain"),
            field("status"),
            g["recipients"],
            g["oldest_age_seconds"]
        );
    }
    Ok(())
}
