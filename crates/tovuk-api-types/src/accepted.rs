//! The one rendering of "what happened to your push or upload": the git hook prints it
//! after `remote:`, `tovuk deploy` prints it as it is, so the two cannot drift.

use crate::{AcceptedSource, ApplyReport, SourceKind};

impl ApplyReport {
    /// The apply report in a few lines: resources, bindings, routes, readiness.
    pub fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let items = |items: &[crate::ApplyItem]| {
            items
                .iter()
                .map(|item| match &item.service {
                    Some(service) => format!("{} {} → {} ({})", item.kind, item.binding, service, item.status),
                    None => format!("{} {} ({})", item.kind, item.binding, item.status),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.addons.is_empty() {
            lines.push(format!("resources: {}", items(&self.addons)));
        }
        if !self.bindings.is_empty() {
            lines.push(format!("bindings: {}", items(&self.bindings)));
        }
        if !self.routes.is_empty() {
            let routes: Vec<String> = self
                .routes
                .iter()
                .map(|route| format!("{} auth={} ({})", route.path, route.auth, route.status))
                .collect();
            lines.push(format!("routes: {}", routes.join(", ")));
        }
        lines.push(format!("readiness: {}", self.readiness));
        lines
    }
}

impl AcceptedSource {
    /// The answer as lines for a person: what was accepted, what became of the deploy,
    /// where it answers, what it costs, and the commands to run next, last.
    pub fn render(&self) -> Vec<String> {
        let deploy = &self.deploy;
        let what = if deploy.source.kind == SourceKind::Archive {
            "upload".to_owned()
        } else {
            deploy.source.ref_name.strip_prefix("refs/heads/").unwrap_or(&deploy.source.ref_name).to_owned()
        };
        let sha = deploy.source.sha.get(..12).unwrap_or(&deploy.source.sha);
        let mut lines = Vec::new();
        if self.duplicate {
            lines.push(format!(
                "{what} at {sha} was already accepted as source operation {}: no new deploy",
                self.source_operation_id
            ));
            lines.push(format!("deploy {} is {}", deploy.id, deploy.state));
            lines.push(format!("to build it again: tovuk deploy retry {} --follow", deploy.id));
        } else {
            let forced = if deploy.source.forced { " (force-push)" } else { "" };
            lines.push(format!("accepted {what} at {sha}{forced} as source operation {}", self.source_operation_id));
            match &deploy.failure {
                Some(failure) if !failure.blockers.is_empty() => {
                    let why = failure.first_actionable_line.as_deref().unwrap_or("missing required config");
                    lines.push(format!("deploy {} blocked before building: {why}", deploy.id));
                    for blocker in &failure.blockers {
                        lines.push(format!("  {} ({}): {}", blocker.name, blocker.needed_by, blocker.next));
                    }
                }
                Some(failure) => {
                    let why = failure.first_actionable_line.as_deref().unwrap_or(failure.reason.as_str());
                    lines.push(format!("deploy {} refused before building: {why}", deploy.id));
                }
                None => lines.push(format!("deploy {} queued (build job {})", deploy.id, deploy.build_job.id)),
            }
        }
        if let Some(apply) = deploy.apply.as_ref().filter(|_| !self.duplicate) {
            lines.extend(apply.render());
        }
        lines.extend(self.warnings.iter().map(|warning| format!("warning: {warning}")));
        lines.push(format!("service URL: {}", self.service_url));
        if let Some(usage) = &self.account_usage {
            let app_total = usage.apps.first().map(|app| app.total).unwrap_or(0.0);
            lines.push(format!(
                "usage this period ({}): {app_total} {} (account: {} {})",
                usage.period.name, usage.currency, usage.total, usage.currency
            ));
        }
        if let Some(estimate) = &self.billing_estimate {
            lines.push(format!(
                "billing estimate for a {} of [expected] load: {} {} (tovuk deploy --dry-run shows each line)",
                estimate.period, estimate.total, estimate.currency
            ));
        }
        lines.extend(self.next.iter().map(|next| format!("next: {next}")));
        lines
    }
}
