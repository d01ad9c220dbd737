//! The video half of the pipeline over gRPC, each stage its own server on 127.0.0.1:0,
//! all sharing one real redis-server: keyframe -> interpolation (LATENT on latents, or
//! PIXEL with RIFE on decoded key frames) -> decode -> upsample x2, for square and 16:9
//! frames. The same seed gives byte-identical frames.

use storyreel_e2e_tests::Mesh;
use storyreel_proto::common::InterpolationSpace;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_frames_to_upsampled_frames_in_both_spaces_square_and_16_9() {
    let mut mesh = Mesh::start().await;
    for (width, height) in [(64u32, 64u32), (1024, 576)] {
        for space in [InterpolationSpace::Latent, InterpolationSpace::Pixel] {
            let job = format!(
                "chain-{width}x{height}-{}",
                space.as_str_name().to_lowercase().replace('_', "-")
            );
            let frames = mesh.chain(&job, width, height, space).await;
            // 2 key frames, 4x: 5 frames, upsampled x2
            assert_eq!(frames.shape, [5, 3, 2 * height as i64, 2 * width as i64], "{job}");
        }
    }
    // the same seed gives byte-identical frames
    let first = mesh.chain("same-a", 64, 64, InterpolationSpace::Latent).await;
    let second = mesh.chain("same-b", 64, 64, InterpolationSpace::Latent).await;
    assert_ne!(first.key, second.key);
    assert_eq!(first.checksum, second.checksum);
    mesh.shutdown().await;
}
