//! `tovuk service show|list`: a service (an app) with its resources.

use super::CommandResult;
use crate::args::{GlobalArgs, ServiceCommand};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::Service;

pub(crate) async fn run(command: ServiceCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        ServiceCommand::Show { app } => {
            let service = client.service(&app).await?;
            if global.json {
                output::json(&service);
            } else {
                print_service(&service);
            }
        }
        ServiceCommand::List => {
            let list = client.services().await?;
            if global.json {
                output::json(&list);
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = list
                .services
                .iter()
                .map(|service| {
                    let mut resources = service.resources.join(" ");
                    if service.detached > 0 {
                        resources.push_str(&format!(" (+{} detached)", service.detached));
                    }
                    vec![
                        service.app.clone(),
                        output::or_dash(service.current_deploy_id.as_deref()),
                        output::or_dash(Some(resources.trim()).filter(|text| !text.is_empty())),
                        service.service_url.clone(),
                    ]
                })
                .collect();
            output::line(output::table(&["SERVICE", "DEPLOY", "RESOURCES", "URL"], &rows));
        }
    }
    Ok(ExitStatus::Success)
}

fn print_service(service: &Service) {
    output::line(format!("{}  {}", service.app, service.service_url));
    output::line(format!("deploy: {}", output::or_dash(service.current_deploy_id.as_deref())));
    output::line(format!("capabilities: {}", service.capabilities.join(", ")));
    if service.resources.is_empty() {
        output::line("resources: none");
        output::note(format!(
            "next: tovuk addon create {} sqlite, or declare one in tovuk.toml ([[resources]] kind = \"sqlite\" binding = \"DB\") and deploy",
            service.app
        ));
        return;
    }
    for resource in &service.resources {
        output::line("");
        output::line(format!("{} {} ({}, {})", resource.kind, resource.binding, resource.id, resource.status));
        output::line(format!("  env: {}", resource.env.join(", ")));
        output::line(format!("  location: {}", resource.location));
        if let Some(readiness) = &resource.readiness {
            output::line(format!("  calls: {} ({readiness})", resource.service.as_deref().unwrap_or("-")));
        }
        if resource.addon {
            output::line("  add-on: attached to the app (tovuk addon detach removes it)");
        }
        let size = resource.size_bytes.map_or_else(|| "not measured yet".to_owned(), |bytes| format!("{bytes} bytes"));
        output::line(format!("  size: {size}"));
        let usage: Vec<String> =
            resource.usage.iter().map(|usage| format!("{} {} {}", usage.meter, usage.quantity, usage.unit)).collect();
        output::line(format!("  usage this period: {}", usage.join(", ")));
        for cap in &resource.caps {
            output::line(format!("  cap: {} {} of {} ({})", cap.meter, cap.used, cap.limit, cap.state));
        }
        if let Some(at) = &resource.detached_at {
            output::note(format!("  detached since {at}: kept, not given to the app; declare it again to reattach"));
        }
    }
}
