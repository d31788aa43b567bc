//! What the store's tests share.

use tovuk_store::{NewSource, SourceKind};
use tovuk_types::AppId;

/// A plain git push of `sha` to `main` of `app`, nothing refused or held.
pub fn pushed(app: &AppId, sha: &str) -> NewSource {
    NewSource {
        app_id: app.clone(),
        token_id: "tok_test".into(),
        kind: SourceKind::Git,
        ref_name: "refs/heads/main".into(),
        old_sha: None,
        sha: sha.into(),
        forced: false,
        retry: false,
        config_needs: Vec::new(),
        refused: None,
        plan: None,
        held_by_push: None,
        resources: Vec::new(),
    }
}
