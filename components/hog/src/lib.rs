//! A guest that grabs memory: the host must cap it.

wit_bindgen::generate!({ path: "../wit", world: "hog-component" });

use exports::lattice::examples::hog::Guest;

struct Hog;

impl Guest for Hog {
    fn grab(mib: u32) -> u32 {
        let mut held: Vec<Vec<u8>> = Vec::new();
        for _ in 0..mib {
            // Touch every page so the memory is really used.
            held.push(vec![0xA5; 1024 * 1024]);
        }
        std::hint::black_box(&held);
        held.len() as u32
    }
}

export!(Hog);
