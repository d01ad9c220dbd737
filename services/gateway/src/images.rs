//! Small u8 RGB frames (keyframe previews, clip thumbnails) as PNG images, for clients
//! that show them as they are (a browser's `data:` URL).

use storyreel_tensors::{DType, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("an image must be u8 (3, H, W) or (F, 3, H, W), got {dtype:?} {shape:?}")]
    Shape { dtype: DType, shape: Vec<usize> },
    #[error("encoding a PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// The first frame of a u8 `(3, H, W)` or `(F, 3, H, W)` tensor as a PNG.
pub fn first_frame_png(tensor: &Tensor) -> Result<Vec<u8>, ImageError> {
    let shape = tensor.shape();
    let (h, w) = match shape {
        [3, h, w] | [_, 3, h, w] if *h > 0 && *w > 0 && tensor.dtype() == DType::U8 => (*h, *w),
        _ => {
            return Err(ImageError::Shape {
                dtype: tensor.dtype(),
                shape: shape.to_vec(),
            });
        }
    };
    // Planar (3, H, W) -> interleaved RGB rows.
    let planes = &tensor.as_bytes()[..3 * h * w];
    let mut rgb = Vec::with_capacity(3 * h * w);
    for i in 0..h * w {
        rgb.extend_from_slice(&[planes[i], planes[h * w + i], planes[2 * h * w + i]]);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w as u32, h as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_through_png() {
        // Two frames of 2x3; the PNG holds the first, interleaved.
        let mut data = Vec::new();
        for frame in 0..2u8 {
            for channel in 0..3u8 {
                for pixel in 0..6u8 {
                    data.push(frame * 100 + channel * 10 + pixel);
                }
            }
        }
        let tensor = Tensor::new(DType::U8, vec![2, 3, 2, 3], data).unwrap();
        let bytes = first_frame_png(&tensor).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&pixels[..6], &[0, 10, 20, 1, 11, 21]);
        assert_eq!(&pixels[15..18], &[5, 15, 25]);
    }

    #[test]
    fn a_float_tensor_is_refused() {
        let tensor = Tensor::zeros(DType::F32, vec![3, 2, 2]).unwrap();
        assert!(matches!(first_frame_png(&tensor), Err(ImageError::Shape { .. })));
    }
}
