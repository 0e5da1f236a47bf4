//! Pure functions, and one that waits so an instance stays busy.

wit_bindgen::generate!({ path: "../wit", world: "calc-component" });

use exports::lattice::examples::calc::Guest;

struct Calc;

impl Guest for Calc {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    fn reverse(s: String) -> String {
        s.chars().rev().collect()
    }

    fn wait(ms: u32) -> u32 {
        std::thread::sleep(std::time::Duration::from_millis(ms.into()));
        ms
    }
}

export!(Calc);
