//! A guest that never returns: the host must interrupt it.

wit_bindgen::generate!({ path: "../wit", world: "runaway-component" });

use exports::lattice::examples::runaway::Guest;

struct Runaway;

impl Guest for Runaway {
    fn spin() -> u64 {
        let mut n: u64 = 0;
        loop {
            // black_box keeps the optimizer from proving the loop pointless.
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Runaway);
