//! `postwerk users …`: people who sign in (create with a role, list, disable, delete, force a
//! logout, set a password). Passwords are read from standard input, never from the
//! command line. Every change is written to the audit log.

use std::io::BufRead as _;

use anyhow::Context;
use clap::Subcommand;
use postwerk_core::config::Config;
use postwerk_core::model::parse_scopes;
use postwerk_mta::audit::Actor;
use postwerk_mta::context::{DEFAULT_TENANT, now_ms};
use postwerk_mta::users::{self, AdminChange};
use postwerk_store::Store;

use crate::cli::{audited, open, tenant_named};

/// `postwerk users …`.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is the first line of standard input.
    Create {
        /// The user's email address (the sign-in name).
        email: String,
        /// owner, admin, developer, analyst, sender, or custom (with --scopes).
        #[arg(long)]
        role: String,
        /// Comma-separated scopes for role `custom`.
        #[arg(long, default_value = "")]
        scopes: String,
        /// Tenant (default: the install's default tenant; created if missing).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// List a tenant's users (id, email, role, scopes, state).
    List {
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Disable a user and end its sessions.
    Disable {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete a user and its sessions.
    Delete {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// End every session of a user now.
    Logout {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Remove a user's second factor (a lost device); ends its sessions.
    RemoveTotp {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Set a user's password (first line of standard input); ends its sessions.
    Password {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Runs `postwerk users …`.
pub async fn run(cmd: UsersCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Create {
            email,
            role,
            scopes,
            tenant,
        } => {
            let scopes = parse_scopes(&scopes).context("--scopes")?;
            let password = password_from_stdin()?;
            let services = open(config).await?;
            let tenant = services.ensure_tenant(&tenant).await?;
            let user = users::create_user(
                &services,
                &Actor::cli(),
                &tenant.id,
                &email,
                &password,
                &role,
                scopes,
            )
            .await?;
            println!("{}", user.id);
        }
        UsersCommand::List { tenant } => {
            let services = open(config).await?;
            let tenant = tenant_named(&services, &tenant).await?;
            for u in services.store.list_users(&tenant.id).await? {
                let state = if u.disabled_at.is_some() {
                    "disabled"
                } else if u.locked_until.is_some_and(|t| t > now_ms()) {
                    "locked"
                } else {
                    "active"
                };
                let scopes: Vec<_> = u.scopes.iter().map(|s| s.as_str()).collect();
                let email = users::email_of(&services, &u).await?;
                println!(
                    "{}\t{email}\t{}\t{}\t{state}",
                    u.id,
                    u.role,
                    scopes.join(",")
                );
            }
        }
        UsersCommand::Disable { id, tenant } => {
            change(config, &tenant, &id, Change::Admin(AdminChange::Disable)).await?
        }
        UsersCommand::Delete { id, tenant } => {
            change(config, &tenant, &id, Change::Admin(AdminChange::Delete)).await?
        }
        UsersCommand::Logout { id, tenant } => {
            change(config, &tenant, &id, Change::Admin(AdminChange::Logout)).await?
        }
        UsersCommand::RemoveTotp { id, tenant } => {
            change(
                config,
                &tenant,
                &id,
                Change::Admin(AdminChange::RemoveSecondFactor),
            )
            .await?;
        }
        UsersCommand::Password { id, tenant } => {
            let password = password_from_stdin()?;
            change(config, &tenant, &id, Change::Password(password)).await?;
        }
    }
    Ok(())
}

/// A change to one user, by id.
enum Change {
    Admin(AdminChange),
    Password(String),
}

async fn change(config: Config, tenant: &str, id: &str, change: Change) -> anyhow::Result<()> {
    let services = open(config).await?;
    let tenant = tenant_named(&services, tenant).await?;
    let user = users::get(&services, &tenant.id, id).await?;
    match change {
        Change::Admin(c) => {
            audited(&services, Some(&tenant.id), c.action(), id.to_string()).await?;
            c.apply(&services, user, now_ms()).await?;
        }
        Change::Password(password) => {
            audited(&services, Some(&tenant.id), "user.password", id.to_string()).await?;
            users::set_password(&services, user, &password).await?;
        }
    }
    Ok(())
}
