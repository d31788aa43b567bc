//! "Did you mean" suggestions for misspelled keys, values and names: the one rule every
//! part of tovuk suggests by (the manifest check, the price table, the CLI).

#[cfg(test)]
mod tests;

/// The candidate closest to `input`, when it is close enough to be a likely
/// typo. Comparison ignores ASCII case and treats `_` and `-` alike, because
/// `Object_Storage` for `object-storage` is a spelling slip, not a new word.
pub fn did_you_mean<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let input_norm = normalize(input);
    // rustc's rule of thumb: a third of the length, but at least one edit.
    let max_distance = (input_norm.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'c str)> = None;
    for &candidate in candidates {
        if candidate == input {
            continue;
        }
        let distance = edit_distance(&input_norm, &normalize(candidate));
        if distance > max_distance {
            continue;
        }
        if best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate).or_else(|| affix_match(&input_norm, candidates))
}

/// A candidate that is the input plus a qualifier (`timeout` for
/// `request_timeout`, `memory` for `memory_mb`): too many edits away for the
/// distance rule, but plainly what was meant. Only when exactly one fits.
fn affix_match<'c>(input_norm: &str, candidates: &[&'c str]) -> Option<&'c str> {
    if input_norm.chars().count() < 3 {
        return None;
    }
    let mut fits = candidates.iter().filter(|candidate| {
        let candidate = normalize(candidate);
        candidate.starts_with(&format!("{input_norm}-")) || candidate.ends_with(&format!("-{input_norm}"))
    });
    match (fits.next(), fits.next()) {
        (Some(only), None) => Some(*only),
        _ => None,
    }
}

fn normalize(text: &str) -> String {
    text.chars().map(|ch| if ch == '_' { '-' } else { ch.to_ascii_lowercase() }).collect()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so `nmae`
/// is one edit from `name`), from `strsim`.
fn edit_distance(left: &str, right: &str) -> usize {
    strsim::osa_distance(left, right)
}
