//! Replacing an app's secret values with `****` in text it prints, and finding them in files.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// What each masked value is replaced with.
pub const MASK: &str = "****";

/// Values shorter than this many bytes are not masked.
///
/// Masking `1`, `on` or `yes` would hide ordinary text in every log line
/// while protecting nothing: such values are guessable anyway.
pub const MIN_MASKED_LEN: usize = 4;

/// Bytes read per step by [`Masker::find_in_reader`].
const CHUNK_BYTES: usize = 64 * 1024;

/// Encoded fragments shorter than this are not masked: too short to be told from text.
const MIN_ENCODED_LEN: usize = 8;
/// Values shorter than this are masked only as themselves: their encodings are short
/// enough to turn up by chance in hashes and ids.
const MIN_ENCODED_VALUE_LEN: usize = 8;

/// The forms a value is commonly printed in besides itself: hex (either case), base64 and
/// base64url at each of the three byte alignments it can have inside a longer encoded
/// string (only the characters that depend on the value alone), and URL encoding.
/// Best effort: a value can always be printed in a form not listed here.
fn encoded_forms(value: &str) -> Vec<String> {
    use base64::Engine;
    let bytes = value.as_bytes();
    let mut forms = vec![hex::encode(bytes), hex::encode_upper(bytes)];
    for engine in [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE] {
        for offset in 0..3 {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            // Character i holds bits [6i, 6i + 6): keep those that lie inside the value.
            let first = (8 * offset).div_ceil(6);
            let end = 8 * (offset + bytes.len()) / 6;
            if let Some(fragment) = encoded.get(first..end) {
                forms.push(fragment.to_owned());
            }
        }
    }
    // Every byte but letters and digits, or (as most encoders) all but RFC 3986's unreserved;
    // a space as `%20` or, in forms, `+`.
    const UNRESERVED_KEPT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    for set in [percent_encoding::NON_ALPHANUMERIC, UNRESERVED_KEPT] {
        let url = percent_encoding::utf8_percent_encode(value, set).to_string();
        forms.push(url.replace("%20", "+"));
        forms.push(url);
    }
    forms.retain(|form| form.len() >= MIN_ENCODED_LEN && form != value);
    forms
}

/// Finds a set of secret values in text and masks them.
///
/// Every occurrence is masked in full, even where two values overlap in the
/// text (the union of all matches is masked, each connected run as one
/// [`MASK`]). The masker holds the values for as long as it lives; `Debug`
/// prints only how many.
#[derive(Clone, Default)]
pub struct Masker {
    matcher: Matcher,
    count: usize,
    longest: usize,
}

#[derive(Clone, Default)]
enum Matcher {
    /// No values to mask.
    #[default]
    Nothing,
    /// The values, searched with overlapping matches so none escapes partly unmasked.
    Values(AhoCorasick),
    /// The automaton could not be built (only for value sets far beyond any real app):
    /// fail closed, treating all text as secret, rather than print values unmasked.
    Everything,
}

impl Masker {
    /// A masker for `values`, skipping empty ones and ones shorter than [`MIN_MASKED_LEN`] bytes; duplicates count once.
    pub fn new<I, S>(values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let values: Vec<S> = values.into_iter().collect();
        let plain: Vec<&str> = values.iter().map(AsRef::as_ref).filter(|value| value.len() >= MIN_MASKED_LEN).collect();
        let mut distinct = plain.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let count = distinct.len();
        let encoded: Vec<String> = plain
            .iter()
            .filter(|value| value.len() >= MIN_ENCODED_VALUE_LEN)
            .flat_map(|value| encoded_forms(value))
            .collect();
        let mut patterns: Vec<&str> = plain.iter().copied().chain(encoded.iter().map(String::as_str)).collect();
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Masker::default();
        }
        let longest = patterns.iter().map(|value| value.len()).max().unwrap_or(0);
        // Standard match semantics: the only kind that reports overlapping matches,
        // so a value starting inside another's match in the text is masked too. A
        // contiguous NFA: the DFA the builder picks for a few patterns costs ~340 KB per
        // release (one masker per release), the NFA ~20 KB, and log lines are short.
        let built = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&patterns);
        let matcher = match built {
            Ok(automaton) => Matcher::Values(automaton),
            Err(_) => Matcher::Everything,
        };
        Masker { matcher, count, longest }
    }

    /// True when no value is masked.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The length in bytes of the longest masked value (0 when none): how much text a
    /// caller cutting a stream must hold back so no value is split unmasked.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// `text` with every occurrence of a value replaced by [`MASK`]; borrowed when nothing matched.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.mask_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => match String::from_utf8(bytes) {
                Ok(masked) => Cow::Owned(masked),
                // Unreachable: values and text are UTF-8, so matches start and end on
                // character boundaries. Never fall back to the unmasked text.
                Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
            },
        }
    }

    /// `bytes` with every occurrence of a value replaced by [`MASK`]; borrowed when nothing matched.
    pub fn mask_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let automaton = match &self.matcher {
            Matcher::Nothing => return Cow::Borrowed(bytes),
            Matcher::Everything => return mask_all(bytes),
            Matcher::Values(automaton) => automaton,
        };
        if !automaton.is_match(bytes) {
            return Cow::Borrowed(bytes);
        }
        let Ok(matches) = automaton.try_find_overlapping_iter(bytes) else {
            // Unreachable with `MatchKind::Standard`; fail closed.
            return mask_all(bytes);
        };
        // Merge overlapping matches into runs so each secret is masked whole, however the values overlap.
        let mut found: Vec<(usize, usize)> = matches.map(|found| (found.start(), found.end())).collect();
        found.sort_unstable();
        let mut runs: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match runs.last_mut() {
                Some(run) if start < run.1 => run.1 = run.1.max(end),
                _ => runs.push((start, end)),
            }
        }
        let mut masked = Vec::with_capacity(bytes.len());
        let mut copied_to = 0;
        for (start, end) in runs {
            masked.extend_from_slice(&bytes[copied_to..start]);
            masked.extend_from_slice(MASK.as_bytes());
            copied_to = end;
        }
        masked.extend_from_slice(&bytes[copied_to..]);
        Cow::Owned(masked)
    }

    /// True when `haystack` contains any value.
    pub fn contains(&self, haystack: &[u8]) -> bool {
        match &self.matcher {
            Matcher::Nothing => false,
            Matcher::Everything => true,
            Matcher::Values(automaton) => automaton.is_match(haystack),
        }
    }

    /// True when what `reader` yields contains any value; reads until a match or the end.
    ///
    /// Reads 64 KiB at a time and keeps the last (longest value − 1) bytes of
    /// each window, so a value split across two reads is still found. Reads
    /// nothing when there are no values.
    pub fn find_in_reader<R: Read>(&self, reader: R) -> io::Result<bool> {
        self.find_in_reader_chunked(reader, CHUNK_BYTES)
    }

    fn find_in_reader_chunked<R: Read>(&self, mut reader: R, chunk_bytes: usize) -> io::Result<bool> {
        if self.is_empty() {
            return Ok(false);
        }
        let keep = self.longest.saturating_sub(1);
        let mut chunk = vec![0u8; chunk_bytes];
        let mut window: Vec<u8> = Vec::with_capacity(chunk_bytes + keep);
        loop {
            let read = match reader.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            window.extend_from_slice(&chunk[..read]);
            if self.contains(&window) {
                return Ok(true);
            }
            // Any value ending in the next read starts at most `keep` bytes before it.
            let drop = window.len().saturating_sub(keep);
            window.drain(..drop);
        }
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Masker").field("values", &self.count).finish_non_exhaustive()
    }
}

/// All of `bytes` as one [`MASK`] (empty text stays empty).
fn mask_all(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.is_empty() { Cow::Borrowed(bytes) } else { Cow::Owned(MASK.as_bytes().to_vec()) }
}
