//! Deploy states and their legal transitions, as named in the deploy lifecycle document.

use std::fmt;

/// The durable state of a deploy. The names are used unchanged in code, the store, JSON and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeployState {
    Queued,
    Building,
    Typechecking,
    Testing,
    ArtifactReady,
    Deploying,
    Running,
    Failed,
    Cancelled,
    Superseded,
}

/// A move the lifecycle does not allow; `Display` names both states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: DeployState,
    pub to: DeployState,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a deploy cannot go from `{}` to `{}`", self.from, self.to)
    }
}

impl std::error::Error for IllegalTransition {}

impl DeployState {
    pub const ALL: [DeployState; 10] = [
        DeployState::Queued,
        DeployState::Building,
        DeployState::Typechecking,
        DeployState::Testing,
        DeployState::ArtifactReady,
        DeployState::Deploying,
        DeployState::Running,
        DeployState::Failed,
        DeployState::Cancelled,
        DeployState::Superseded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeployState::Queued => "queued",
            DeployState::Building => "building",
            DeployState::Typechecking => "typechecking",
            DeployState::Testing => "testing",
            DeployState::ArtifactReady => "artifact_ready",
            DeployState::Deploying => "deploying",
            DeployState::Running => "running",
            DeployState::Failed => "failed",
            DeployState::Cancelled => "cancelled",
            DeployState::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Terminal states never change again.
    pub const fn is_terminal(self) -> bool {
        matches!(self, DeployState::Failed | DeployState::Cancelled | DeployState::Superseded)
    }

    /// The one transition function: the happy path walks forward one step at a time,
    /// any non-terminal state may fail, work not yet running may be cancelled, and only
    /// a running deploy can be superseded.
    pub fn transition(self, to: DeployState) -> Result<DeployState, IllegalTransition> {
        use DeployState::*;
        let legal = match (self, to) {
            (Queued, Building)
            | (Building, Typechecking)
            | (Typechecking, Testing)
            | (Testing, ArtifactReady)
            | (ArtifactReady, Deploying)
            | (Deploying, Running)
            | (Running, Superseded) => true,
            (from, Failed) => !from.is_terminal() && from != Running,
            (from, Cancelled) => !from.is_terminal() && !matches!(from, Deploying | Running),
            _ => false,
        };
        if legal { Ok(to) } else { Err(IllegalTransition { from: self, to }) }
    }
}

impl fmt::Display for DeployState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::DeployState::*;
    use super::*;

    #[test]
    fn happy_path_walks_forward() {
        let mut state = Queued;
        for next in [Building, Typechecking, Testing, ArtifactReady, Deploying, Running, Superseded] {
            state = state.transition(next).expect("legal step");
        }
        assert_eq!(state, Superseded);
    }

    #[test]
    fn terminal_states_are_final_and_errors_name_states() {
        for from in [Failed, Cancelled, Superseded] {
            for to in DeployState::ALL {
                assert!(from.transition(to).is_err());
            }
        }
        let error = Queued.transition(Running).expect_err("skips steps");
        assert_eq!(error.to_string(), "a deploy cannot go from `queued` to `running`");
        assert!(Running.transition(Cancelled).is_err());
        assert!(Testing.transition(Failed).is_ok());
    }

    #[test]
    fn names_round_trip() {
        for state in DeployState::ALL {
            assert_eq!(DeployState::parse(state.as_str()), Some(state));
        }
    }
}
