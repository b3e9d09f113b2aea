//! `saga-account customer …`: the operator actions from a shell, through the same
//! `AdminService` as the operator API (the audit line names the key `cli`).

use crate::service::operator::{Actor, AdminService};
use crate::{
    domain::clock::rfc3339,
    domain::{Account, CustomerId, Email, Error},
};

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SetActive(CustomerId, bool),
    Show(CustomerId),
    Find(String),
    Delete(CustomerId),
    Sessions(CustomerId),
    RevokeSessions(CustomerId),
    PasswordReset(CustomerId),
    MfaReset(CustomerId),
}

fn describe(a: &Account) -> String {
    format!(
        "customer {}: {} {} <{}> active={} email_verified={} created_at={}",
        a.id,
        a.personal.first_name.as_str(),
        a.personal.last_name.as_str(),
        a.personal.email,
        a.active,
        a.email_verified,
        a.created_at.map_or_else(|| "-".to_owned(), rfc3339)
    )
}

/// Runs the action; returns what to print.
pub async fn run(admin: &AdminService, action: Action) -> Result<String, Error> {
    let cli = Actor::Cli;
    Ok(match action {
        Action::SetActive(id, active) => {
            let previous = admin.set_active(cli, id, active).await?;
            format!("customer {id}: active {previous} -> {active}")
        }
        Action::Show(id) => describe(&admin.customer(cli, id).await?),
        Action::Find(email) => describe(&admin.find_customer(cli, &Email::parse(email)?).await?),
        Action::Delete(id) => {
            admin.delete_customer(cli, id).await?;
            format!("customer {id} deleted")
        }
        Action::Sessions(id) => {
            let sessions = admin.sessions(cli, id).await?;
            let mut out = format!("customer {id}: {} live sessions", sessions.len());
            for s in sessions {
                out.push_str(&format!(
                    "\n  {} created {} refreshed {} from {} ({})",
                    s.id,
                    rfc3339(s.created_at),
                    rfc3339(s.refreshed_at),
                    s.client_ip,
                    s.user_agent
                ));
            }
            out
        }
        Action::RevokeSessions(id) => {
            let n = admin.revoke_sessions(cli, id).await?;
            format!("customer {id}: {n} sessions revoked")
        }
        Action::PasswordReset(id) => {
            admin.password_reset(cli, id).await?;
            format!("customer {id}: password reset mail queued")
        }
        Action::MfaReset(id) => {
            if admin.mfa_reset(cli, id).await? {
                format!("customer {id}: second factor removed; notice queued")
            } else {
                format!("customer {id}: no second factor was active")
            }
        }
    })
}
