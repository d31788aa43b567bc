//! A push that repeats one already landed succeeds like it.
//!
//! Identical pushes sent at once all read the branch at its old commit; pushes to an app
//! are taken one at a time, so by the time a later one runs the branch is already at the
//! commit it pushes, and git refuses its stale "old" value (`failed to update ref`). Such
//! a command (its new value is where the branch is now) is rewritten to expect what the
//! branch holds: the update is then a no-op that succeeds, and the push is answered with
//! the deploy the first one made (accepting is idempotent per token, ref and commit).

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// How much of a push body is read looking for its commands; they come first and are small.
const COMMANDS_AT_MOST: usize = 64 << 10;

/// `body` with every command for `ref_name` whose new value is `current` rewritten to
/// expect `current`. Anything that is not plainly such a command passes unchanged.
pub(crate) async fn repeat_succeeds(body: Body, ref_name: &str, current: &str) -> Body {
    let mut body = body;
    let mut head: Vec<u8> = Vec::new();
    // Read until the commands' flush packet, or give up and pass everything on.
    while commands_end(&head).is_none() && head.len() < COMMANDS_AT_MOST {
        match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => head.extend_from_slice(&data),
                Err(_) => break,
            },
            Some(Err(error)) => {
                let prefix = Bytes::from(head);
                let failed = tokio_stream::iter([Ok::<_, axum::Error>(prefix), Err(error)]);
                return Body::from_stream(failed);
            }
            None => break,
        }
    }
    if let Some(end) = commands_end(&head) {
        rewrite(&mut head[..end], ref_name, current);
    }
    let prefix = tokio_stream::once(Ok::<_, axum::Error>(Bytes::from(head)));
    Body::from_stream(tokio_stream::StreamExt::chain(prefix, body.into_data_stream()))
}

/// Where the command pkt-lines end (after the flush packet `0000`), if they all arrived.
fn commands_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let length = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        let length = usize::from_str_radix(length, 16).ok()?;
        if length == 0 {
            return Some(at + 4);
        }
        if length < 4 {
            return None;
        }
        at += length;
        if at > bytes.len() {
            return None;
        }
    }
}

/// Rewrites, in place, the old value of each `OLD NEW REF` command for `ref_name` whose
/// NEW is `current`. Values have a fixed length, so the pkt-line lengths stay right.
fn rewrite(commands: &mut [u8], ref_name: &str, current: &str) {
    let mut at = 0;
    while let Some(length) = commands
        .get(at..at + 4)
        .and_then(|hex| std::str::from_utf8(hex).ok())
        .and_then(|hex| usize::from_str_radix(hex, 16).ok())
    {
        if length < 4 || at + length > commands.len() {
            return;
        }
        let line = &commands[at + 4..at + length];
        let text = line.split(|byte| *byte == 0 || *byte == b'\n').next().unwrap_or_default();
        let mut fields = text.split(|byte| *byte == b' ');
        let stale = matches!(
            (fields.next(), fields.next(), fields.next()),
            (Some(old), Some(new), Some(name))
                if old.len() == current.len() && new == current.as_bytes() && name == ref_name.as_bytes() && old != new
        );
        if stale {
            commands[at + 4..at + 4 + current.len()].copy_from_slice(current.as_bytes());
        }
        at += length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &str) -> String {
        format!("{:04x}{line}", line.len() + 4)
    }

    #[test]
    fn only_a_command_that_repeats_what_landed_is_rewritten() {
        let (x, y, z) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
        let body = format!(
            "{}{}{}0000PACK...",
            pkt(&format!("{x} {y} refs/heads/main\0report-status side-band-64k\n")),
            pkt(&format!("{x} {z} refs/heads/other\n")),
            pkt(&format!("{x} {y} refs/heads/another\n")),
        );
        let mut bytes = body.clone().into_bytes();
        let end = commands_end(&bytes).expect("commands end");
        assert_eq!(&bytes[end..], b"PACK...");
        rewrite(&mut bytes[..end], "refs/heads/main", &y);
        let expected = body.replacen(&format!("{x} {y} refs/heads/main"), &format!("{y} {y} refs/heads/main"), 1);
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), expected);
        assert_eq!(commands_end(b"0032aaaa"), None, "not all arrived");
    }
}
