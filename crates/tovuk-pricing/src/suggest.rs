//! "Did you mean" for misspelled meter names.

use tovuk_manifest::edit_distance;

#[cfg(test)]
mod tests;

/// The meter name closest to `input` within two edits, comparing without
/// ASCII case and with `-` as `_`; the first in canonical order wins a tie.
pub(crate) fn closest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    const MAX_DISTANCE: usize = 2;
    let input = normalize(input);
    let mut best: Option<(usize, &'c str)> = None;
    for &candidate in candidates {
        let distance = edit_distance(&input, &normalize(candidate));
        if distance <= MAX_DISTANCE && best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn normalize(text: &str) -> String {
    text.chars().map(|ch| if ch == '-' { '_' } else { ch.to_ascii_lowercase() }).collect()
}
