//! `tovuk token create|list|revoke`.

use super::CommandResult;
use crate::args::{GlobalArgs, TokenCommand};
use crate::exit::ExitStatus;
use crate::{connect, output};

pub(crate) async fn run(command: TokenCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        TokenCommand::Create { name, app } => {
            let name = name.unwrap_or_else(|| match &app {
                Some(app) => format!("deploy ({app})"),
                None => "cli".to_owned(),
            });
            let created = client.create_token(&name, app.as_deref()).await?;
            if global.json {
                output::json(&created);
                return Ok(ExitStatus::Success);
            }
            let scope = match &created.token.app {
                Some(app) => format!("deploy token for app `{app}`"),
                None => "admin token".to_owned(),
            };
            // The secret alone on stdout, so `tovuk token create > ci.token` just works.
            output::note(format!(
                "created {scope} `{}` ({}); the secret is shown only now:",
                created.token.name, created.token.id
            ));
            output::line(&created.secret);
        }
        TokenCommand::List => {
            let list = client.list_tokens().await?;
            if global.json {
                output::json(&list);
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = list
                .tokens
                .iter()
                .map(|token| {
                    vec![
                        token.id.clone(),
                        token.name.clone(),
                        token.scope.to_string(),
                        output::or_dash(token.app.as_deref()),
                        token.created_at.clone(),
                        output::or_dash(token.last_used_at.as_deref()),
                        output::or_dash(token.revoked_at.as_deref()),
                    ]
                })
                .collect();
            output::line(output::table(&["ID", "NAME", "SCOPE", "APP", "CREATED", "LAST USED", "REVOKED"], &rows));
        }
        TokenCommand::Revoke { id } => {
            let token = client.revoke_token(&id).await?;
            if global.json {
                output::json(&token);
            } else {
                output::line(format!("revoked token `{}` ({})", token.name, token.id));
            }
        }
    }
    Ok(ExitStatus::Success)
}
