//! Links the system libespeak-ng (Debian libespeak-ng-dev; scripts/setup-system.sh).
fn main() {
    println!("cargo:rustc-link-lib=dylib=espeak-ng");
}
