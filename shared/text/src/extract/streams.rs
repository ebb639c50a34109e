//! PDF stream decoding under one budget for the whole document: each stream is decoded at
//! most once, in place, and every byte any filter produces counts against
//! [`Limits::max_unpacked_bytes`](super::Limits::max_unpacked_bytes). Decodes the filters
//! `lopdf` knows (Flate, LZW, ASCII85, with PNG predictors) the way it does, so the text
//! reader finds what it would have decoded itself; where `lopdf` would give up on a filter, the
//! stream keeps its raw bytes, which is what the reader then falls back to.

use std::io::{Read, Write};

use flate2::read::{DeflateDecoder, ZlibDecoder};
use pdf_extract::{Dictionary, Object, Stream};

use super::ExtractError;
use super::worker::Deadline;

/// Bytes decompressed so far, against the limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    pub(super) fn new(limit: u64) -> Self {
        Budget { limit, used: 0 }
    }

    /// Bytes decompressed so far.
    #[cfg(test)]
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    fn charge(&mut self, bytes: u64) -> Result<(), ExtractError> {
        if bytes > self.remaining() {
            return Err(self.exceeded());
        }
        self.used += bytes;
        Ok(())
    }

    fn exceeded(&self) -> ExtractError {
        ExtractError::TooLarge {
            format: "pdf",
            limit_bytes: self.limit,
        }
    }
}

/// Replaces the content of `stream` by its decoded bytes and drops its filters. `TooLarge`
/// where the budget runs out, `TimedOut` where the deadline passes while inflating.
pub(super) fn decode_in_place(
    stream: &mut Stream,
    budget: &mut Budget,
    deadline: &Deadline,
) -> Result<(), ExtractError> {
    // No (readable) `Filter`: the reader takes the bytes as they are.
    let Ok(filters) = stream.filters() else {
        return Ok(());
    };
    let filters: Vec<Vec<u8>> = filters.into_iter().map(<[u8]>::to_vec).collect();
    let params = stream
        .dict
        .get(b"DecodeParms")
        .and_then(Object::as_dict)
        .ok()
        .cloned();
    let mut decoded: Option<Vec<u8>> = None;
    for filter in &filters {
        let input = decoded.as_deref().unwrap_or(&stream.content);
        let output = match filter.as_slice() {
            b"FlateDecode" => predict(inflate(input, budget, deadline)?, params.as_ref()),
            b"LZWDecode" => predict(
                unlzw(input, params.as_ref(), budget, deadline)?,
                params.as_ref(),
            ),
            b"ASCII85Decode" => match ascii85(input) {
                Some(output) => {
                    budget.charge(output.len() as u64)?;
                    Some(output)
                }
                None => None,
            },
            _ => None,
        };
        if output.is_none() {
            // Where `lopdf` fails on a filter, the reader uses the raw bytes.
            decoded = None;
            break;
        }
        decoded = output;
    }
    let content = match decoded {
        Some(decoded) => decoded,
        None => std::mem::take(&mut stream.content),
    };
    stream.set_plain_content(content);
    Ok(())
}

/// Inflates zlib data, falling back to raw deflate after the 2-byte header where zlib yields
/// nothing (as `lopdf` does). A corrupt tail ends the data.
fn inflate(
    input: &[u8],
    budget: &mut Budget,
    deadline: &Deadline,
) -> Result<Vec<u8>, ExtractError> {
    let (output, failed) = read_bounded(ZlibDecoder::new(input), budget, deadline)?;
    if failed && output.is_empty() && input.len() > 2 {
        return Ok(read_bounded(DeflateDecoder::new(&input[2..]), budget, deadline)?.0);
    }
    Ok(output)
}

/// Everything `reader` yields until it ends or fails (and whether it failed), charged to
/// `budget` as it comes.
fn read_bounded(
    mut reader: impl Read,
    budget: &mut Budget,
    deadline: &Deadline,
) -> Result<(Vec<u8>, bool), ExtractError> {
    let mut output = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        deadline.check()?;
        match reader.read(&mut buffer) {
            Ok(0) => return Ok((output, false)),
            Ok(read) => {
                budget.charge(read as u64)?;
                output.extend_from_slice(&buffer[..read]);
            }
            Err(_) => return Ok((output, true)),
        }
    }
}

/// LZW-decodes like `lopdf` (`EarlyChange` defaults to 1), charging `budget` as it goes.
fn unlzw(
    input: &[u8],
    params: Option<&Dictionary>,
    budget: &mut Budget,
    deadline: &Deadline,
) -> Result<Vec<u8>, ExtractError> {
    use weezl::{BitOrder, decode::Decoder};
    const MIN_CODE_SIZE: u8 = 8;
    let early_change = params
        .and_then(|p| p.get(b"EarlyChange").ok())
        .and_then(|p| p.as_i64().ok())
        .is_none_or(|v| v != 0);
    let mut decoder = if early_change {
        Decoder::with_tiff_size_switch(BitOrder::Msb, MIN_CODE_SIZE)
    } else {
        Decoder::new(BitOrder::Msb, MIN_CODE_SIZE)
    };
    let mut sink = BoundedSink {
        output: Vec::new(),
        budget,
        deadline,
        stopped: None,
    };
    // A corrupt code ends the data, as in `lopdf`.
    let _ = decoder.into_stream(&mut sink).decode_all(input);
    match sink.stopped {
        Some(error) => Err(error),
        None => Ok(sink.output),
    }
}

/// Collects decoded bytes, refusing them once the budget or the deadline is spent.
struct BoundedSink<'a> {
    output: Vec<u8>,
    budget: &'a mut Budget,
    deadline: &'a Deadline,
    stopped: Option<ExtractError>,
}

impl Write for BoundedSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let refused = self
            .deadline
            .check()
            .and_then(|()| self.budget.charge(bytes.len() as u64));
        if let Err(error) = refused {
            self.stopped = Some(error);
            return Err(std::io::Error::other("decoding stopped"));
        }
        self.output.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Undoes a PNG predictor (10 to 15) where `params` names one, as `lopdf` does; `None` where
/// the data does not fit it. The output is never longer than the input.
fn predict(data: Vec<u8>, params: Option<&Dictionary>) -> Option<Vec<u8>> {
    let Some(params) = params else {
        return Some(data);
    };
    let number = |key: &[u8], default: i64| {
        params
            .get(key)
            .and_then(Object::as_i64)
            .unwrap_or(default)
            .max(1)
    };
    let predictor = params
        .get(b"Predictor")
        .and_then(Object::as_i64)
        .unwrap_or(1);
    if !(10..=15).contains(&predictor) {
        return Some(data);
    }
    let columns = usize::try_from(number(b"Columns", 1)).ok()?;
    let colors = usize::try_from(number(b"Colors", 1)).ok()?;
    let bits = usize::try_from(number(b"BitsPerComponent", 8).max(8)).ok()?;
    let bytes_per_pixel = colors.checked_mul(bits)? / 8;
    // A row longer than the data fails on the first row anyway: refused before `lopdf`
    // allocates it.
    let row = bytes_per_pixel.checked_mul(columns)?;
    if data.is_empty() {
        return Some(data);
    }
    if row >= data.len() {
        return None;
    }
    pdf_extract::filters::png::decode_frame(&data, bytes_per_pixel, columns).ok()
}

/// ASCII85-decodes through `lopdf` (at most four bytes out per byte in); `None` where it
/// fails.
fn ascii85(input: &[u8]) -> Option<Vec<u8>> {
    let mut dict = Dictionary::new();
    dict.set("Filter", Object::Name(b"ASCII85Decode".to_vec()));
    Stream::new(dict, input.to_vec())
        .decompressed_content()
        .ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;
    use crate::extract::Format;

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(3600), Format::Pdf)
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn stream(filter: &str, content: Vec<u8>) -> Stream {
        let mut dict = Dictionary::new();
        dict.set("Filter", Object::Name(filter.as_bytes().to_vec()));
        Stream::new(dict, content)
    }

    #[test]
    fn each_stream_is_decoded_once_and_counted_against_one_budget() {
        let mut budget = Budget::new(1000);
        let mut first = stream("FlateDecode", zlib(&[b'a'; 600]));
        decode_in_place(&mut first, &mut budget, &deadline()).unwrap();
        assert_eq!(first.content, vec![b'a'; 600]);
        assert!(!first.is_compressed());
        assert_eq!(budget.used(), 600);
        // Decoded already: nothing more to inflate or charge.
        decode_in_place(&mut first, &mut budget, &deadline()).unwrap();
        assert_eq!(budget.used(), 600);
        // Another 600 bytes do not fit in what is left.
        let mut second = stream("FlateDecode", zlib(&[b'b'; 600]));
        assert_eq!(
            decode_in_place(&mut second, &mut budget, &deadline()),
            Err(ExtractError::TooLarge {
                format: "pdf",
                limit_bytes: 1000
            })
        );
    }

    #[test]
    fn lzw_bombs_stop_at_the_budget() {
        let mut encoded = Vec::new();
        weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .into_stream(&mut encoded)
            .encode_all(&[0u8; 4 << 20][..])
            .status
            .unwrap();
        assert!(encoded.len() < (4 << 20) / 50, "{}", encoded.len());
        let mut budget = Budget::new(1 << 20);
        let mut bomb = stream("LZWDecode", encoded.clone());
        assert!(matches!(
            decode_in_place(&mut bomb, &mut budget, &deadline()),
            Err(ExtractError::TooLarge { .. })
        ));
        let mut budget = Budget::new(8 << 20);
        let mut fits = stream("LZWDecode", encoded);
        decode_in_place(&mut fits, &mut budget, &deadline()).unwrap();
        assert_eq!(fits.content.len(), 4 << 20);
        assert_eq!(budget.used(), 4 << 20);
    }

    #[test]
    fn inflating_stops_at_the_deadline() {
        let mut budget = Budget::new(u64::MAX);
        let mut big = stream("FlateDecode", zlib(&[0u8; 1 << 20]));
        assert!(matches!(
            decode_in_place(
                &mut big,
                &mut budget,
                &Deadline::after(Duration::ZERO, Format::Pdf)
            ),
            Err(ExtractError::TimedOut { format: "pdf", .. })
        ));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn filters_lopdf_cannot_decode_leave_the_raw_bytes() {
        let mut budget = Budget::new(1 << 20);
        let mut jpeg = stream("DCTDecode", b"\xFF\xD8\xFF raw".to_vec());
        decode_in_place(&mut jpeg, &mut budget, &deadline()).unwrap();
        assert_eq!(jpeg.content, b"\xFF\xD8\xFF raw");
        assert!(!jpeg.is_compressed());
        // A predictor row longer than the data: refused before it is allocated.
        let mut odd = stream("FlateDecode", zlib(b"short"));
        let mut params = Dictionary::new();
        params.set("Predictor", 12);
        params.set("Columns", i64::from(u32::MAX));
        odd.dict.set("DecodeParms", params);
        let raw = odd.content.clone();
        decode_in_place(&mut odd, &mut budget, &deadline()).unwrap();
        assert_eq!(odd.content, raw);
    }

    #[test]
    fn ascii85_then_flate_and_png_predictors_decode_like_lopdf() {
        let mut rows = Vec::new();
        for row in [[1u8, 2, 3], [4, 5, 6]] {
            rows.push(0); // PNG filter type None
            rows.extend(row);
        }
        let mut dict = Dictionary::new();
        dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
        let mut params = Dictionary::new();
        params.set("Predictor", 12);
        params.set("Columns", 3);
        dict.set("DecodeParms", params);
        let original = Stream::new(dict, zlib(&rows));
        let expected = original.decompressed_content().unwrap();
        let mut ours = original.clone();
        decode_in_place(&mut ours, &mut Budget::new(1 << 20), &deadline()).unwrap();
        assert_eq!(ours.content, expected);
        assert_eq!(ours.content, [1, 2, 3, 4, 5, 6]);

        let mut a85 = Dictionary::new();
        a85.set(
            "Filter",
            vec![
                Object::Name(b"ASCII85Decode".to_vec()),
                Object::Name(b"FlateDecode".to_vec()),
            ],
        );
        // "hello" zlib-compressed, then ASCII85-encoded.
        let packed = zlib(b"hello");
        let mut encoded = String::new();
        for chunk in packed.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            let mut value = u32::from_be_bytes(word);
            let mut digits = [0u8; 5];
            for digit in digits.iter_mut().rev() {
                *digit = b'!' + (value % 85) as u8;
                value /= 85;
            }
            encoded.push_str(std::str::from_utf8(&digits[..chunk.len() + 1]).unwrap());
        }
        encoded.push_str("~>");
        let mut chained = Stream::new(a85, encoded.into_bytes());
        let expected = chained.decompressed_content().unwrap();
        assert_eq!(expected, b"hello");
        decode_in_place(&mut chained, &mut Budget::new(1 << 20), &deadline()).unwrap();
        assert_eq!(chained.content, b"hello");
    }
}
