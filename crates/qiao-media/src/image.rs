//! Thumbnails and previews of images, made with limits on dimensions and memory so that a
//! decompression bomb or a corrupt file is an error, not a crash or an exhausted machine.
//! Decoding is CPU-heavy: callers run it on a blocking thread, a bounded number at a time.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// Largest width or height decoded (pixels): long enough for the "long screenshots" people
/// share (a phone's width, tens of thousands of pixels down).
pub const MAX_DIMENSION: u32 = 32_000;
/// Most pixels decoded (a 50-megapixel photo; a phone's long screenshot is far less).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Most memory one decode may allocate (the largest image above, four bytes a pixel, and room).
pub const MAX_ALLOC: u64 = 256 << 20;
/// The small thumbnail's width (a tall one is up to [`MAX_ASPECT`] times as tall).
pub const THUMB_SIDE: u32 = 320;
/// The preview's longest side (only made for larger images).
pub const PREVIEW_SIDE: u32 = 1280;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "the image is {width}×{height} pixels; thumbnails are made of at most {max} pixels a side and 50 megapixels"
    )]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("the image cannot be read: {0}")]
    Unreadable(String),
}

/// An encoded thumbnail.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
}

/// What was made from an image.
#[derive(Debug)]
pub struct Thumbnails {
    pub width: u32,
    pub height: u32,
    pub thumb: Encoded,
    /// Only for images larger than the preview size.
    pub preview: Option<Encoded>,
}

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_DIMENSION);
    l.max_image_height = Some(MAX_DIMENSION);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, ImageError> {
    let mut r = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Unreadable(e.to_string()))?;
    if !matches!(r.format(), Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)) {
        return Err(ImageError::Unreadable("not a PNG, JPEG, GIF or WebP image".into()));
    }
    r.limits(limits());
    Ok(r)
}

/// Decodes an image (the first frame of an animation) and makes its thumbnail and preview.
pub fn thumbnails(bytes: &[u8]) -> Result<Thumbnails, ImageError> {
    // The header first: refuse huge dimensions before allocating anything for them.
    let (width, height) = reader(bytes)?.into_dimensions().map_err(|e| ImageError::Unreadable(e.to_string()))?;
    if width > MAX_DIMENSION || height > MAX_DIMENSION || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height, max: MAX_DIMENSION });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Unreadable("the image has no pixels".into()));
    }
    let too_large = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge { width, height, max: MAX_DIMENSION },
        other => ImageError::Unreadable(other.to_string()),
    };
    let mut decoder = reader(bytes)?.into_decoder().map_err(too_large)?;
    // Phones store photos as the sensor saw them and say in EXIF how to turn them upright.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(too_large)?;
    img.apply_orientation(orientation);
    // The size as shown (a photo turned by a quarter swaps its sides).
    let (width, height) = (img.width(), img.height());
    // A long screenshot (or a panorama) shrunk whole to fit a square is a sliver: its
    // thumbnail and preview show its start, at most three times as long as wide.
    let img = crop_to_aspect(img, MAX_ASPECT);
    // As wide as the timeline shows it (a tall one as tall as it is cut), never enlarged: a
    // small image is its own thumbnail, and a phone's screenshot is not a blurry sliver.
    let (box_w, box_h) = (THUMB_SIDE, THUMB_SIDE * MAX_ASPECT);
    let thumb = if img.width() <= box_w && img.height() <= box_h {
        encode(&img)?
    } else {
        encode(&shrink(&img, |i| i.thumbnail(box_w, box_h)))?
    };
    let (w, h) = (img.width(), img.height());
    let preview = (w > PREVIEW_SIDE || h > PREVIEW_SIDE)
        .then(|| encode(&shrink(&img, |i| i.resize(PREVIEW_SIDE, PREVIEW_SIDE, image::imageops::FilterType::Triangle))))
        .transpose()?;
    Ok(Thumbnails { width, height, thumb, preview })
}

/// The longest a thumbnail or preview is for its width (or wide for its height).
pub const MAX_ASPECT: u32 = 3;

/// The top (or left) part of `img`, at most `aspect` times as long as wide (or as wide as
/// long); the image itself when it is within that.
fn crop_to_aspect(img: DynamicImage, aspect: u32) -> DynamicImage {
    let (w, h) = (img.width(), img.height());
    if h / aspect > w {
        img.crop_imm(0, 0, w, w * aspect)
    } else if w / aspect > h {
        img.crop_imm(0, 0, h * aspect, h)
    } else {
        img
    }
}

/// Shrinks with `resize`. With transparency, the colours are weighted by their opacity while
/// they are averaged (premultiplied alpha): a transparent pixel's colour (black, in a GIF) must
/// not darken the edges of what is drawn beside it.
fn shrink(img: &DynamicImage, resize: impl Fn(&DynamicImage) -> DynamicImage) -> DynamicImage {
    if !img.color().has_alpha() {
        return resize(img);
    }
    let mut rgba = img.to_rgba8();
    for p in rgba.pixels_mut() {
        let a = u32::from(p[3]);
        for c in 0..3 {
            p[c] = ((u32::from(p[c]) * a + 127) / 255) as u8;
        }
    }
    let mut out = resize(&DynamicImage::ImageRgba8(rgba)).to_rgba8();
    for p in out.pixels_mut() {
        let a = u32::from(p[3]);
        for c in 0..3 {
            p[c] = (u32::from(p[c]) * 255 + a / 2).checked_div(a).map_or(0, |v| v.min(255) as u8);
        }
    }
    DynamicImage::ImageRgba8(out)
}

/// JPEG for opaque images, PNG where transparency must survive.
fn encode(img: &DynamicImage) -> Result<Encoded, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let (format, mime, img) = if img.color().has_alpha() {
        (ImageFormat::Png, "image/png", DynamicImage::ImageRgba8(img.to_rgba8()))
    } else {
        (ImageFormat::Jpeg, "image/jpeg", DynamicImage::ImageRgb8(img.to_rgb8()))
    };
    img.write_to(&mut out, format).map_err(|e| ImageError::Unreadable(e.to_string()))?;
    Ok(Encoded { bytes: out.into_inner(), mime })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        }));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// PNG's chunk checksum (CRC-32, ISO 3309).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn thumbnails_keep_the_aspect_ratio() {
        let t = thumbnails(&png(1600, 800)).unwrap();
        assert_eq!((t.width, t.height), (1600, 800));
        let small = image::load_from_memory(&t.thumb.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (320, 160));
        assert_eq!(t.thumb.mime, "image/jpeg");
        let preview = image::load_from_memory(&t.preview.unwrap().bytes).unwrap();
        assert_eq!((preview.width(), preview.height()), (1280, 640));
        let small = thumbnails(&png(200, 100)).unwrap();
        assert!(small.preview.is_none());
        let thumb = image::load_from_memory(&small.thumb.bytes).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (200, 100), "a small image is not enlarged");
    }

    #[test]
    fn long_screenshots_get_thumbnails_huge_images_do_not() {
        let t = thumbnails(&png(200, 14_000)).unwrap();
        assert_eq!((t.width, t.height), (200, 14_000));
        // Its thumbnail and preview show its top, three times as long as wide.
        let small = image::load_from_memory(&t.thumb.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (200, 600));
        // A phone's screenshot: as wide as the timeline draws it, not a third of that.
        let phone = thumbnails(&png(1170, 2532)).unwrap();
        let small = image::load_from_memory(&phone.thumb.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (320, 693));
        assert!(t.preview.is_none(), "the part shown (200×600) is smaller than a preview");
        let wide = thumbnails(&png(4_000, 300)).unwrap();
        let small = image::load_from_memory(&wide.thumb.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (320, 107));
        // Within each side's limit, but more pixels than a decode may hold: a header that says
        // so (with its checksum right, so that it is read as such).
        let mut wide = png(10, 10);
        wide[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        wide[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&wide[12..29]);
        wide[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(thumbnails(&wide), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn photos_are_turned_upright_as_their_exif_says() {
        // A 40×20 JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6), as a
        // phone held upright writes it.
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) }
        }));
        let exif = vec![
            b'I', b'I', 42, 0, 8, 0, 0, 0, // TIFF header, little-endian, first IFD at 8
            1, 0, // one entry
            0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, // Orientation (SHORT) = 6
            0, 0, 0, 0, // no next IFD
        ];
        let mut out = Cursor::new(Vec::new());
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
        image::ImageEncoder::set_exif_metadata(&mut encoder, exif).unwrap();
        img.write_with_encoder(encoder).unwrap();
        let t = thumbnails(&out.into_inner()).unwrap();
        assert_eq!((t.width, t.height), (20, 40), "reported as seen, upright");
        let small = image::load_from_memory(&t.thumb.bytes).unwrap().to_rgb8();
        assert_eq!(small.dimensions(), (20, 40), "upright, and not enlarged");
        // Turned clockwise, the left (red) half is now on top.
        let top = small.get_pixel(10, 5);
        let bottom = small.get_pixel(10, 35);
        assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
    }

    #[test]
    fn transparent_edges_keep_their_colour() {
        // A white square on a transparent background whose hidden colour is black (as GIFs
        // store it): shrunk, the square's soft edge must stay white, not turn grey.
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(1000, 1000, |x, y| {
            if (101..899).contains(&x) && (101..899).contains(&y) {
                image::Rgba([255, 255, 255, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        }));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        let t = thumbnails(&out.into_inner()).unwrap();
        assert_eq!(t.thumb.mime, "image/png");
        let small = image::load_from_memory(&t.thumb.bytes).unwrap().to_rgba8();
        let edges: Vec<_> = small.pixels().filter(|p| p[3] > 0 && p[3] < 255).collect();
        assert!(!edges.is_empty(), "the shrunk square has soft edges");
        for p in edges {
            assert!(p[0] >= 250 && p[1] >= 250 && p[2] >= 250, "an edge pixel darkened: {p:?}");
        }
    }

    #[test]
    fn bombs_and_corrupt_files_are_errors() {
        // A PNG header claiming 100,000 × 100,000 pixels: refused before decoding.
        let mut bomb = png(10, 10);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(thumbnails(&bomb), Err(ImageError::TooLarge { .. }) | Err(ImageError::Unreadable(_))));
        let mut corrupt = png(64, 64);
        corrupt.truncate(corrupt.len() / 2);
        assert!(matches!(thumbnails(&corrupt), Err(ImageError::Unreadable(_))));
        assert!(thumbnails(b"GIF89a not really").is_err());
        assert!(thumbnails(b"<svg xmlns='http://www.w3.org/2000/svg'/>").is_err());
    }
}
