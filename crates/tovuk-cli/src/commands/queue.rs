//! `tovuk queue list|show|peek|purge|redrive`: an operator's view of an app's queues.

use super::CommandResult;
use crate::args::{GlobalArgs, QueueCommand};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::{QueueInfo, QueuePurgeRequest};

pub(crate) async fn run(command: QueueCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        QueueCommand::List { app } => {
            let list = client.queues(&app).await?;
            if global.json {
                output::json(&list);
            } else if list.queues.is_empty() {
                output::line(format!("{app} has no queues"));
                output::note("declare one in tovuk.toml: [[resources]] kind = \"queue\", then deploy");
            } else {
                let rows: Vec<Vec<String>> = list
                    .queues
                    .iter()
                    .map(|queue| {
                        vec![
                            queue.binding.clone(),
                            queue.delivery.map_or("-", |delivery| delivery.as_str()).to_owned(),
                            queue.depth.to_string(),
                            queue.in_flight.to_string(),
                            queue.dead_letter.to_string(),
                            consumer_text(queue),
                        ]
                    })
                    .collect();
                output::line(output::table(&["BINDING", "DELIVERY", "DEPTH", "IN FLIGHT", "DEAD", "CONSUMER"], &rows));
            }
        }
        QueueCommand::Show { app, binding } => {
            let queue = client.queue(&app, &binding).await?;
            if global.json {
                output::json(&queue);
                return Ok(ExitStatus::Success);
            }
            let oldest = queue.oldest_message_age_seconds.map_or_else(|| "-".to_owned(), |age| format!("{age}s"));
            let mut lines = vec![
                format!("queue {} of {} ({}, {})", queue.binding, queue.app, queue.id, queue.status),
                format!("depth        {} ({} ready, {} delayed)", queue.depth, queue.ready, queue.delayed),
                format!("in flight    {}", queue.in_flight),
                format!("dead letters {}", queue.dead_letter),
                format!("oldest       {oldest}"),
                format!(
                    "delivery     {}",
                    queue.delivery.map_or("- (no release declaring it runs)", |delivery| delivery.as_str())
                ),
                format!("consumer     {}", consumer_text(&queue)),
            ];
            if let Some(retries) = queue.max_retries {
                let target = queue.dead_letter_queue.as_deref().unwrap_or("kept here as dead");
                lines.push(format!("retries      {retries}, then dead letters go to: {target}"));
            }
            output::line(lines.join("\n"));
            if queue.dead_letter > 0 {
                output::note(format!("see them: tovuk queue peek {app} {binding} --dead-letter"));
            }
        }
        QueueCommand::Peek { app, binding, dead_letter, limit } => {
            let peek = client.queue_peek(&app, &binding, dead_letter, limit).await?;
            if global.json {
                output::json(&peek);
            } else if peek.messages.is_empty() {
                let what = if dead_letter { "dead letters" } else { "messages" };
                output::line(format!("{app} {binding} has no {what}"));
            } else {
                let rows: Vec<Vec<String>> = peek
                    .messages
                    .iter()
                    .map(|message| {
                        let mut body = message.body.to_string();
                        if body.len() > 60 {
                            body = format!("{}...", body.chars().take(57).collect::<String>());
                        }
                        vec![
                            message.id.clone(),
                            message.attempts.to_string(),
                            message.enqueued_at.clone(),
                            if message.in_flight { "in flight" } else { "waiting" }.to_owned(),
                            body,
                            output::or_dash(message.last_error.as_deref()),
                        ]
                    })
                    .collect();
                output::line(output::table(&["ID", "ATTEMPTS", "SENT", "STATE", "BODY", "LAST ERROR"], &rows));
            }
        }
        QueueCommand::Purge { app, binding, dead_letter, confirm } => {
            let request = QueuePurgeRequest { dead_letter, confirm };
            let purged = client.queue_purge(&app, &binding, &request).await?;
            if global.json {
                output::json(&purged);
            } else {
                let what = if dead_letter { "dead letters" } else { "messages" };
                output::line(format!("purged {} {what} of {app} {binding}", purged.purged));
            }
        }
        QueueCommand::Redrive { app, binding } => {
            let redriven = client.queue_redrive(&app, &binding).await?;
            if global.json {
                output::json(&redriven);
            } else {
                output::line(format!(
                    "moved {} dead letters back into {app} {binding}, their attempts reset",
                    redriven.redriven
                ));
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn consumer_text(queue: &QueueInfo) -> String {
    match &queue.consumer {
        Some(consumer) => format!("{} {} ({})", consumer.app, consumer.path, consumer.readiness),
        None => "-".to_owned(),
    }
}
