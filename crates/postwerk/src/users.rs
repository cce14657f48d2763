//! `postwerk users …`: people who sign in (create with a role, list, disable, delete, force a
//! logout, set a password). Passwords are asked for without echo in a terminal or read
//! from standard input, never from the command line. Every change is written to the
//! audit log.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context, bail};
use clap::Subcommand;
use postwerk_accounts::users::{self, AdminChange};
use postwerk_core::config::Config;
use postwerk_core::model::parse_scopes;
use postwerk_services::audit::Actor;
use postwerk_services::context::{DEFAULT_TENANT, now_ms};
use postwerk_store::prelude::*;

use serde_json::json;

use crate::cli::{audited, open, tenant_for};
use crate::listing::Listing;

/// `postwerk users …`.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is asked for twice without echo in a terminal;
    /// piped, it is the first line of standard input.
    Create {
        /// The user's email address (the sign-in name).
        email: String,
        /// owner, admin, developer, analyst, sender, or custom (with --scopes).
        #[arg(long)]
        role: String,
        /// Comma-separated scopes for role `custom`.
        #[arg(long, default_value = "")]
        scopes: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// List a tenant's users: id, email, role, scopes, state.
    List {
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user and end its sessions.
    Disable {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Delete a user and its sessions.
    Delete {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// End every session of a user now.
    Logout {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Remove a user's second factor (a lost device); ends its sessions.
    RemoveTotp {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Set a user's password (asked for as by `create`); ends its sessions.
    Password {
        /// The user's id (`usr_…`).
        id: String,
        /// Tenant, made by `tenants create` (default: the install's default tenant).
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
}

/// The password for `users create` and `users password`. From a terminal it is asked
/// for twice, without echo, and both must match; otherwise (piped) it is the first line
/// of standard input.
fn new_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return first_line();
    }
    let password = hidden_prompt("Password: ")?;
    if hidden_prompt("Repeat the password: ")? != password {
        bail!("the passwords do not match; nothing was changed");
    }
    Ok(password)
}

/// Turns the terminal's echo off, prints `prompt` on standard error and reads a line
/// (the newline is still echoed); then restores the echo.
fn hidden_prompt(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning the terminal echo off")?;
    // Only now: what is typed after the prompt is never echoed.
    eprint!("{prompt}");
    let line = first_line();
    tcsetattr(&stdin, OptionalActions::Now, &saved).context("turning the terminal echo on")?;
    line
}

/// The next line of standard input, without its line ending.
fn first_line() -> anyhow::Result<String> {
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
            let password = new_password()?;
            let services = open(config).await?;
            let tenant = tenant_for(&services, &tenant).await?;
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
        UsersCommand::List { tenant, json } => {
            let services = open(config).await?;
            let tenant = tenant_for(&services, &tenant).await?;
            let mut list = Listing::new(&["id", "email", "role", "scopes", "state"]);
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
                list.row([
                    json!(u.id),
                    json!(email),
                    json!(u.role),
                    json!(scopes),
                    json!(state),
                ]);
            }
            list.print(json);
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
            let password = new_password()?;
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
    let tenant = tenant_for(&services, tenant).await?;
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
