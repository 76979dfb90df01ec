//! Image samples as pixels: PNG and JPEG decoded, resampled with a triangle
//! filter, and PNG encoded for the generators.
//!
//! Written on the `png` and `zune-jpeg` decoders directly rather than through the `image` crate,
//! whose colour management and format dispatch edgecert never used (they were a twentieth of a
//! fresh build's compile time, docs/performance.md). The conversions are the ones a sample had
//! through `image` 0.25.10 (tests/fixtures/raster pins them): the separable triangle resampling
//! of its `resize_exact` at the file's own depth, then 16-bit channels rounded to 8, sRGB luma in
//! single precision, alpha dropped.

use std::io::Cursor;

/// The largest decoded image accepted: 512 MiB of samples (two bytes each), the `image` crate's
/// default allocation limit, so a hostile header cannot make the decoder allocate without bound.
const MAX_DECODED_BYTES: u64 = 512 << 20;

/// Decoded pixels: `height` rows of `width` pixels of `channels` interleaved samples (1 grey,
/// 2 grey and alpha, 3 RGB, 4 RGBA) at the file's depth, 0 to `max` (255, or 65535 for a
/// 16-bit PNG): a 16-bit image is resampled and reduced to luma before it is rounded to 8 bits.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub max: u16,
    pub samples: Vec<u16>,
}

/// A PNG or JPEG, told apart by its signature; the error says why it is not readable.
pub fn decode(bytes: &[u8]) -> Result<Raster, String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes)
    } else {
        Err("neither a PNG nor a JPEG signature".into())
    }
}

fn bounded(width: usize, height: usize, channels: usize) -> Result<(), String> {
    let size = (width as u64) * (height as u64) * (channels * std::mem::size_of::<u16>()) as u64;
    if size > MAX_DECODED_BYTES {
        return Err(format!(
            "a {width}x{height} image decodes to {size} bytes, over the {MAX_DECODED_BYTES}-byte limit"
        ));
    }
    Ok(())
}

fn decode_png(bytes: &[u8]) -> Result<Raster, String> {
    let limits = png::Limits { bytes: MAX_DECODED_BYTES as usize };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    // Palettes become RGB(A), grey below 8 bits becomes 8 bits, tRNS becomes an alpha channel.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    let (color, depth) = reader.output_color_type();
    let channels = color.samples();
    let sixteen = depth == png::BitDepth::Sixteen;
    bounded(width, height, channels)?;
    let mut buffer = vec![0; reader.output_buffer_size().ok_or("the image's size overflows")?];
    let frame = reader.next_frame(&mut buffer).map_err(|e| e.to_string())?;
    buffer.truncate(frame.buffer_size());
    let (max, samples) = if sixteen {
        (u16::MAX, buffer.chunks_exact(2).map(|s| u16::from_be_bytes([s[0], s[1]])).collect())
    } else {
        (u16::from(u8::MAX), buffer.into_iter().map(u16::from).collect())
    };
    Ok(Raster { width, height, channels, max, samples })
}

fn decode_jpeg(bytes: &[u8]) -> Result<Raster, String> {
    use zune_core::colorspace::ColorSpace;
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(1 << 16)
        .set_max_height(1 << 16);
    let mut decoder =
        zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| format!("{e:?}"))?;
    let (width, height) = decoder.dimensions().ok_or("the JPEG's dimensions are unreadable")?;
    let source = decoder.input_colorspace().ok_or("the JPEG's colour space is unreadable")?;
    // Grey stays grey, RGB(A) as coded; YCbCr, CMYK and the rest become RGB.
    let output = match source {
        ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA => source,
        _ => ColorSpace::RGB,
    };
    bounded(width, height, output.num_components())?;
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(output));
    let samples = decoder.decode().map_err(|e| format!("{e:?}"))?.into_iter().map(u16::from).collect();
    Ok(Raster { width, height, channels: output.num_components(), max: u16::from(u8::MAX), samples })
}

impl Raster {
    /// 8-bit pixels with `channels` (1 or 3) per pixel: grey copied to RGB, RGB to sRGB luma,
    /// alpha dropped.
    pub fn into_channels(self, channels: usize) -> Vec<u8> {
        let eight = |v: u16| self.to_eight_bits(v);
        let pixels = self.samples.chunks_exact(self.channels);
        match (self.channels, channels) {
            (_, 1) if self.channels >= 3 => pixels.map(|p| self.luma(p)).collect(),
            (_, 1) => pixels.map(|p| eight(p[0])).collect(),
            (1 | 2, 3) => pixels.flat_map(|p| [eight(p[0]); 3]).collect(),
            (_, 3) => pixels.flat_map(|p| [eight(p[0]), eight(p[1]), eight(p[2])]).collect(),
            (from, to) => unreachable!("{from} channels to {to}: samples take 1 or 3"),
        }
    }

    /// A sample as 8 bits, rounded: round(v · 255 / max).
    fn to_eight_bits(&self, v: u16) -> u8 {
        ((u32::from(v) * 255 + u32::from(self.max) / 2) / u32::from(self.max)) as u8
    }

    /// The luma of an RGB(A) pixel as the `image` crate computes it: channels scaled to [0, 1],
    /// weighted, summed in single precision, rounded to 8 bits.
    fn luma(&self, p: &[u16]) -> u8 {
        let scale = 1.0 / f32::from(self.max);
        let sum = LUMA_WEIGHTS.iter().zip(p).fold(0.0f32, |acc, (w, &v)| acc + f32::from(v) * scale * w);
        (sum * 255.0).round() as u8
    }

    /// Resampled to `width` × `height` with a triangle filter (bilinear when enlarging, an
    /// average over the covered source pixels when shrinking): rows first, then columns, in
    /// floating point, rounded once at the end.
    pub fn resized(&self, width: usize, height: usize) -> Raster {
        if (width, height) == (self.width, self.height) || self.width == 0 || self.height == 0 {
            return self.clone();
        }
        let c = self.channels;
        let mut vertical = vec![0f32; self.width * height * c];
        for (y, taps) in triangle_taps(self.height, height).iter().enumerate() {
            let row = &mut vertical[y * self.width * c..(y + 1) * self.width * c];
            for &(source, weight) in taps {
                let from = &self.samples[source * self.width * c..(source + 1) * self.width * c];
                row.iter_mut().zip(from).for_each(|(out, &v)| *out += f32::from(v) * weight);
            }
        }
        let mut samples = vec![0u16; width * height * c];
        let columns = triangle_taps(self.width, width);
        for y in 0..height {
            let row = &vertical[y * self.width * c..(y + 1) * self.width * c];
            for (x, taps) in columns.iter().enumerate() {
                for k in 0..c {
                    let sum: f32 = taps.iter().map(|&(source, weight)| row[source * c + k] * weight).sum();
                    samples[(y * width + x) * c + k] = sum.clamp(0.0, f32::from(self.max)).round() as u16;
                }
            }
        }
        Raster { width, height, channels: c, max: self.max, samples }
    }
}

/// The luma weights of sRGB (BT.709 primaries, D65 white) as single floats: the `image` crate
/// derives them from the primaries through its colour-management library, and these are its bits.
const LUMA_WEIGHTS: [f32; 3] = [0.212_647_84, 0.715_179_2, 0.072_173_04];

/// For each of `to` output positions along an axis of `from` pixels: the source pixels and their
/// normalised triangle weights, the filter widened by the ratio when shrinking.
fn triangle_taps(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
    let ratio = from as f32 / to as f32;
    let scale = ratio.max(1.0);
    (0..to)
        .map(|out| {
            let centre = (out as f32 + 0.5) * ratio;
            let left = ((centre - scale).floor() as i64).clamp(0, from as i64 - 1) as usize;
            let right = ((centre + scale).ceil() as i64).clamp(left as i64 + 1, from as i64) as usize;
            let weights: Vec<(usize, f32)> = (left..right)
                .map(|i| (i, (1.0 - ((i as f32 - (centre - 0.5)) / scale).abs()).max(0.0)))
                .collect();
            let total: f32 = weights.iter().map(|w| w.1).sum();
            weights.into_iter().map(|(i, w)| (i, w / total)).collect()
        })
        .collect()
}

/// A PNG of 8-bit grey (`channels` 1) or RGB (3) pixels, encoded as the golden generators always
/// have (fast deflate, adaptive filtering), so a regenerated set is byte for byte the recorded one.
pub fn encode_png(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len(), width * height * channels, "{width}x{height} pixels of {channels} channels");
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        other => panic!("PNG samples are grey or RGB, not {other} channels"),
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header().expect("a PNG header into memory");
    writer.write_image_data(pixels).expect("PNG data into memory");
    writer.finish().expect("a PNG's end into memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Raster {
        Raster { width, height, channels, max: 255, samples: pixels.iter().map(|&v| u16::from(v)).collect() }
    }

    fn rgb(width: usize, height: usize, pixels: &[u8]) -> Raster {
        raster(width, height, 3, pixels)
    }

    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/raster")
    }

    #[test]
    fn a_png_round_trips_in_grey_and_rgb() {
        let grey: Vec<u8> = (0..12).map(|v| v * 20).collect();
        let back = decode(&encode_png(4, 3, 1, &grey)).unwrap();
        assert_eq!(back, raster(4, 3, 1, &grey));
        let colour: Vec<u8> = (0..18).map(|v| v * 14).collect();
        assert_eq!(decode(&encode_png(3, 2, 3, &colour)).unwrap(), rgb(3, 2, &colour));
    }

    #[test]
    fn channels_convert_as_samples_take_them() {
        let pixels = rgb(2, 1, &[255, 0, 0, 10, 200, 30]);
        // 0.2126 · 255 = 54.2 → 54; 0.2126·10 + 0.7152·200 + 0.0722·30 = 147.3 → 147.
        assert_eq!(pixels.clone().into_channels(1), vec![54, 147]);
        assert_eq!(pixels.clone().into_channels(3), vec![255, 0, 0, 10, 200, 30]);
        let grey_alpha = raster(2, 1, 2, &[9, 255, 7, 0]);
        assert_eq!(grey_alpha.into_channels(3), vec![9, 9, 9, 7, 7, 7]);
        let rgba = raster(1, 1, 4, &[1, 2, 3, 4]);
        assert_eq!(rgba.into_channels(3), vec![1, 2, 3]);
    }

    #[test]
    fn resampling_interpolates_when_enlarging_and_averages_when_shrinking() {
        // Two grey pixels, 0 and 200, doubled: the outer pixels keep their value, the inner
        // ones are a quarter of the way across (the triangle filter's bilinear weights).
        let row = raster(2, 1, 1, &[0, 200]);
        assert_eq!(row.resized(4, 1).into_channels(1), vec![0, 50, 150, 200]);
        // Halved: each output pixel is the weighted mean of the pixels it covers.
        let wide = raster(4, 1, 1, &[0, 100, 100, 200]);
        let halved = wide.resized(2, 1).into_channels(1);
        assert!(halved[0] > 0 && halved[0] < 100 && halved[1] > 100 && halved[1] < 200, "{halved:?}");
        // A flat image stays flat in both directions, every channel.
        let flat = rgb(3, 3, &[7, 80, 250].repeat(9));
        assert_eq!(flat.resized(5, 2).into_channels(3), [7, 80, 250].repeat(10));
    }

    /// The pixels the `image` crate gave for the same files (tests/fixtures/raster/README.md):
    /// JPEG in colour and grey, PNG with alpha, 16-bit PNG, as decoded and resized both ways, in
    /// RGB and luma.
    #[test]
    fn every_pixel_is_the_one_the_image_crate_gave() {
        for name in ["rgb.jpg", "grey.jpg", "rgba.png", "rgb16.png"] {
            let decoded = decode(&std::fs::read(fixtures().join(name)).unwrap()).unwrap();
            for (width, height) in [(0, 0), (4, 9), (13, 3)] {
                let raster = if width == 0 { decoded.clone() } else { decoded.resized(width, height) };
                for (channels, kind) in [(3, "rgb"), (1, "luma")] {
                    let expected =
                        std::fs::read(fixtures().join(format!("{name}.{width}x{height}.{kind}"))).unwrap();
                    assert_eq!(
                        raster.clone().into_channels(channels),
                        expected,
                        "{name} at {width}x{height}, {kind}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]
        /// A hostile sample: a real PNG or JPEG with bytes overwritten and cut short decodes or
        /// says why, never panics; a decoded one holds the pixels its header declares.
        #[test]
        fn damaged_images_decode_or_say_why(
            jpeg in proptest::bool::ANY,
            edits in proptest::collection::vec((0usize..2048, proptest::num::u8::ANY), 1..8),
            cut in 0usize..2048,
        ) {
            let mut bytes = std::fs::read(fixtures().join(if jpeg { "rgb.jpg" } else { "rgba.png" })).unwrap();
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut.max(3));
            match decode(&bytes) {
                Ok(r) => proptest::prop_assert_eq!(r.samples.len(), r.width * r.height * r.channels),
                Err(why) => proptest::prop_assert!(!why.is_empty()),
            }
        }
    }

    #[test]
    fn unreadable_bytes_say_why() {
        assert_eq!(decode(b"GIF89a").unwrap_err(), "neither a PNG nor a JPEG signature");
        let mut truncated = encode_png(4, 4, 3, &[5; 48]);
        truncated.truncate(40);
        assert!(!decode(&truncated).unwrap_err().is_empty());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 2]).is_err());
    }
}
