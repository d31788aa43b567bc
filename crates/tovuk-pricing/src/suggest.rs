//! "Did you mean" for misspelled meter names.

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

/// Optimal string alignment distance: Levenshtein plus adjacent
/// transpositions, so `reqeusts` is one edit from `requests`.
fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    let width = right.len() + 1;
    let mut table = vec![0usize; (left.len() + 1) * width];
    for (i, cell) in table.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in table.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=left.len() {
        for j in 1..=right.len() {
            let cost = usize::from(left[i - 1] != right[j - 1]);
            let mut best = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && left[i - 1] == right[j - 2] && left[i - 2] == right[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[left.len() * width + right.len()]
}
