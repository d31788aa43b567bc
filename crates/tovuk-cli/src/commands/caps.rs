//! `tovuk caps set|list|unset`: hard caps per app and meter.

use super::CommandResult;
use crate::args::{CapsCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::CapList;

pub(crate) async fn run(command: CapsCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let (list, said) = match command {
        CapsCommand::Set { app, meter, limit } => {
            let list = client.set_cap(&app, &meter, limit).await?;
            (list, Some(format!("capped `{meter}` of `{app}` at {limit} per period")))
        }
        CapsCommand::List { app } => (client.list_caps(&app).await?, None),
        CapsCommand::Unset { app, meter } => {
            let list = client.unset_cap(&app, &meter).await?;
            (list, Some(format!("removed the `{meter}` cap of `{app}`")))
        }
    };
    if global.json {
        output::json(&list);
        return Ok(ExitStatus::Success);
    }
    if let Some(said) = said {
        output::line(said);
    }
    print_caps(&list);
    Ok(ExitStatus::Success)
}

fn print_caps(list: &CapList) {
    if list.caps.is_empty() {
        output::line(format!("`{}` has no caps", list.app));
        output::note(format!("next: tovuk caps set {} requests 1000000", list.app));
        return;
    }
    let rows: Vec<Vec<String>> = list
        .caps
        .iter()
        .map(|cap| {
            vec![cap.meter.clone(), format!("{} {}", cap.limit, cap.unit), cap.used.to_string(), cap.state.to_string()]
        })
        .collect();
    output::line(output::table(&["METER", "LIMIT", "USED", "STATE"], &rows));
    for event in &list.events {
        output::note(format!(
            "{}: {} reached {} of {}; {} stopped",
            event.at, event.meter, event.used, event.limit, event.stopped
        ));
    }
}
