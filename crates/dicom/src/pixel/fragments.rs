//! Frame boundaries in encapsulated pixel data (PS3.5 A.4).
//!
//! In order: the Extended Offset Table, the Basic Offset Table, one fragment per frame, all
//! fragments for a single frame, and finally codec markers: a fragment that starts with a JPEG
//! SOI / JPEG 2000 SOC or JP2 signature starts a frame, or (failing that) a fragment ending in
//! EOI/EOC (FF D9, which all three codecs share) ends one. Offset tables that do not land on
//! fragment boundaries are ignored rather than trusted.

use std::borrow::Cow;
use std::ops::Range;

use super::PixelError;

/// One frame: a range of fragment indices and, from the Extended Offset Table, its byte length.
#[derive(Debug, Clone)]
pub(crate) struct FrameSpan {
    fragments: Range<usize>,
    len: Option<u64>,
}

/// The frame's bytes: borrowed when it is one fragment.
pub(crate) fn join(fragments: &[Vec<u8>], span: FrameSpan) -> Cow<'_, [u8]> {
    let parts = &fragments[span.fragments];
    let mut out: Cow<'_, [u8]> = match parts {
        [one] => Cow::Borrowed(one.as_slice()),
        _ => Cow::Owned(parts.concat()),
    };
    if let Some(len) = span.len
        && (len as usize) < out.len()
    {
        out = match out {
            Cow::Borrowed(b) => Cow::Borrowed(&b[..len as usize]),
            Cow::Owned(mut v) => {
                v.truncate(len as usize);
                Cow::Owned(v)
            }
        };
    }
    out
}

/// Splits `fragments` into `frames` frames.
pub(crate) fn frame_spans(
    fragments: &[Vec<u8>],
    bot: &[u32],
    eot: Option<&[u64]>,
    eot_lengths: Option<&[u64]>,
    frames: u32,
) -> Result<Vec<FrameSpan>, PixelError> {
    let frames = frames as usize;
    if fragments.is_empty() {
        return Err(PixelError::Decode(
            "encapsulated Pixel Data has no fragments".into(),
        ));
    }
    if let Some(eot) = eot
        && let Some(spans) = from_offsets(fragments, eot, frames)
    {
        let lengths = eot_lengths.filter(|l| l.len() == frames);
        return Ok(spans
            .into_iter()
            .enumerate()
            .map(|(i, fragments)| FrameSpan {
                fragments,
                len: lengths.map(|l| l[i]),
            })
            .collect());
    }
    let bot: Vec<u64> = bot.iter().map(|&o| u64::from(o)).collect();
    let spans = if let Some(spans) = from_offsets(fragments, &bot, frames) {
        spans
    } else if frames == 1 {
        std::iter::once(0..fragments.len()).collect()
    } else if fragments.len() == frames {
        (0..frames).map(|i| i..i + 1).collect()
    } else if let Some(spans) = by_start_marker(fragments).filter(|s| s.len() == frames) {
        spans
    } else if let Some(spans) = by_end_marker(fragments).filter(|s| s.len() == frames) {
        spans
    } else {
        return Err(PixelError::Decode(format!(
            "cannot find {frames} frames in {} fragments without an offset table",
            fragments.len()
        )));
    };
    Ok(spans
        .into_iter()
        .map(|fragments| FrameSpan {
            fragments,
            len: None,
        })
        .collect())
}

/// Maps offsets (from the first fragment's item tag) to fragment ranges, if they are valid.
fn from_offsets(
    fragments: &[Vec<u8>],
    offsets: &[u64],
    frames: usize,
) -> Option<Vec<Range<usize>>> {
    if offsets.len() != frames || offsets.first() != Some(&0) {
        return None;
    }
    // Item start positions: each item is an 8-byte header plus its value.
    let mut starts = Vec::with_capacity(fragments.len());
    let mut pos = 0u64;
    for f in fragments {
        starts.push(pos);
        pos += 8 + f.len() as u64;
    }
    let mut firsts = Vec::with_capacity(frames);
    for &o in offsets {
        let i = starts.binary_search(&o).ok()?;
        if firsts.last().is_some_and(|&prev| prev >= i) {
            return None;
        }
        firsts.push(i);
    }
    Some(
        firsts
            .iter()
            .enumerate()
            .map(|(k, &s)| s..firsts.get(k + 1).copied().unwrap_or(fragments.len()))
            .collect(),
    )
}

fn starts_frame(f: &[u8]) -> bool {
    f.starts_with(&[0xFF, 0xD8]) // JPEG / JPEG-LS SOI
        || f.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) // JPEG 2000 SOC + SIZ
        || f.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' ']) // JP2 signature box
}

fn ends_frame(f: &[u8]) -> bool {
    // Allow a few bytes of zero padding after the marker.
    let trimmed = f.len() - f.iter().rev().take(8).take_while(|&&b| b == 0).count();
    f[..trimmed].ends_with(&[0xFF, 0xD9])
}

fn by_start_marker(fragments: &[Vec<u8>]) -> Option<Vec<Range<usize>>> {
    if !starts_frame(&fragments[0]) {
        return None;
    }
    let firsts: Vec<usize> = (0..fragments.len())
        .filter(|&i| starts_frame(&fragments[i]))
        .collect();
    Some(
        firsts
            .iter()
            .enumerate()
            .map(|(k, &s)| s..firsts.get(k + 1).copied().unwrap_or(fragments.len()))
            .collect(),
    )
}

fn by_end_marker(fragments: &[Vec<u8>]) -> Option<Vec<Range<usize>>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, f) in fragments.iter().enumerate() {
        if ends_frame(f) {
            spans.push(start..i + 1);
            start = i + 1;
        }
    }
    (start == fragments.len()).then_some(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(n: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.resize(n, 7);
        v
    }

    fn spans(f: &[Vec<u8>], bot: &[u32], frames: u32) -> Vec<Range<usize>> {
        frame_spans(f, bot, None, None, frames)
            .unwrap()
            .into_iter()
            .map(|s| s.fragments)
            .collect()
    }

    #[test]
    fn basic_offset_table_groups_fragments() {
        let f = vec![jpeg(10), vec![1; 6], jpeg(4)];
        // Items: 8+10, 8+6, then frame 2 at 32.
        assert_eq!(spans(&f, &[0, 32], 2), vec![0..2, 2..3]);
    }

    #[test]
    fn bad_offset_table_falls_back_to_markers() {
        let f = vec![jpeg(10), vec![1; 6], jpeg(4)];
        assert_eq!(spans(&f, &[0, 31], 2), vec![0..2, 2..3]);
    }

    #[test]
    fn end_markers_split_when_start_markers_missing() {
        let f = vec![vec![1, 2], vec![3, 0xFF, 0xD9, 0], vec![5, 0xFF, 0xD9]];
        assert_eq!(spans(&f, &[], 2), vec![0..2, 2..3]);
    }

    #[test]
    fn single_frame_takes_every_fragment() {
        let f = vec![jpeg(3), vec![1], vec![2]];
        assert_eq!(spans(&f, &[], 1), vec![0..3]);
    }

    #[test]
    fn extended_offset_table_with_lengths() {
        let f = vec![jpeg(10), jpeg(10)];
        let s = frame_spans(&f, &[], Some(&[0, 18]), Some(&[9, 10]), 2).unwrap();
        assert_eq!(join(&f, s[0].clone()).len(), 9);
        assert_eq!(join(&f, s[1].clone()).len(), 10);
    }

    #[test]
    fn unsplittable_is_an_error() {
        let f = vec![vec![1], vec![2], vec![3]];
        assert!(frame_spans(&f, &[], None, None, 2).is_err());
    }
}
