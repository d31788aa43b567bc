//! Relays `git receive-pack`'s answer and adds the platform's words where git's own are
//! not enough: git refuses a pack over `receive.maxInputSize` with "pack exceeds maximum
//! allowed size", naming neither the limit nor a way around it.
//!
//! The answer is a pkt-line stream; when the client asked for `side-band-64k`, every
//! packet carries a band byte (1 data, 2 progress, 3 fatal) and the stream ends with one
//! flush packet. Lines sent on band 2 before that flush are shown as `remote: ...`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What git prints (band 2) when a pack is over `receive.maxInputSize`.
const GIT_SIZE_REFUSAL: &[u8] = b"pack exceeds maximum allowed size";

/// Copies `from` to `to` packet by packet; when git refused the pack for its size, `note`
/// goes out on the progress band just before the end, one packet per line.
pub(crate) async fn relay_receive_pack(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    note: &str,
) -> std::io::Result<()> {
    let mut side_band = None;
    let mut refused_for_size = false;
    loop {
        let mut header = [0u8; 4];
        match from.read_exact(&mut header).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return to.flush().await,
            Err(error) => return Err(error),
        }
        let length = std::str::from_utf8(&header).ok().and_then(|hex| usize::from_str_radix(hex, 16).ok());
        let Some(length) = length.filter(|&length| length == 0 || length >= 4) else {
            // Not a data packet (delim, response-end) or not pkt-lines at all: pass the rest on.
            to.write_all(&header).await?;
            tokio::io::copy(&mut from, &mut to).await?;
            return to.flush().await;
        };
        if length == 0 {
            if side_band == Some(true) && refused_for_size {
                for line in note.lines() {
                    to.write_all(&progress_packet(line)).await?;
                }
                refused_for_size = false;
            }
            to.write_all(&header).await?;
            to.flush().await?;
            continue;
        }
        let mut payload = vec![0u8; length - 4];
        from.read_exact(&mut payload).await?;
        let band = payload.first().copied();
        let multiplexed = *side_band.get_or_insert(matches!(band, Some(1..=3)));
        if multiplexed && matches!(band, Some(2 | 3)) && contains(&payload, GIT_SIZE_REFUSAL) {
            refused_for_size = true;
        }
        to.write_all(&header).await?;
        to.write_all(&payload).await?;
    }
}

/// One band-2 packet holding `line`, cut to what a packet can carry.
fn progress_packet(line: &str) -> Vec<u8> {
    const MAX_PAYLOAD: usize = 65_520 - 4 - 2;
    let mut text = line.as_bytes();
    if text.len() > MAX_PAYLOAD {
        text = &text[..MAX_PAYLOAD];
    }
    let mut packet = format!("{:04x}", text.len() + 6).into_bytes();
    packet.push(2);
    packet.extend_from_slice(text);
    packet.push(b'\n');
    packet
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::{progress_packet, relay_receive_pack};

    fn packet(band: u8, text: &str) -> Vec<u8> {
        let mut packet = format!("{:04x}", text.len() + 5).into_bytes();
        packet.push(band);
        packet.extend_from_slice(text.as_bytes());
        packet
    }

    async fn relay(input: &[u8]) -> Vec<u8> {
        let mut output = Vec::new();
        relay_receive_pack(input, &mut output, "the limit is 10 bytes\nuse tovuk deploy").await.expect("relay");
        output
    }

    #[tokio::test]
    async fn the_note_goes_before_the_end_only_when_git_refused_the_size() {
        let mut refused = packet(2, "fatal: pack exceeds maximum allowed size\n");
        refused.extend(packet(1, "0012unpack error\n0000"));
        let mut expected = refused.clone();
        refused.extend_from_slice(b"0000");
        expected.extend(progress_packet("the limit is 10 bytes"));
        expected.extend(progress_packet("use tovuk deploy"));
        expected.extend_from_slice(b"0000");
        assert_eq!(relay(&refused).await, expected);

        let mut accepted = packet(2, "remote: deploy dep_x queued\n");
        accepted.extend(packet(1, "000eunpack ok\n0000"));
        accepted.extend_from_slice(b"0000");
        assert_eq!(relay(&accepted).await, accepted, "a landed push is passed on untouched");
    }

    #[tokio::test]
    async fn an_answer_without_side_band_is_passed_on_untouched() {
        // Without side-band the report is plain pkt-lines: nothing may be added to it.
        let text = "unpack index-pack abnormal exit\n";
        let plain = format!("{:04x}{text}0000", text.len() + 4).into_bytes();
        assert_eq!(relay(&plain).await, plain);
        let garbage = b"not pkt-lines at all".to_vec();
        assert_eq!(relay(&garbage).await, garbage);
    }
}
