//! [`Checksum`]: every input form reads to the same digest, the printed form is canonical.

use proptest::prelude::*;

use super::{checksum, text};
use crate::checksum::Checksum;

proptest! {
    #![proptest_config(super::config())]

    /// Any text parses to a checksum or an error; an accepted one prints in the canonical
    /// form, which reads back to it.
    #[test]
    fn checksum_parse_never_panics(input in text()) {
        if let Ok(parsed) = input.parse::<Checksum>() {
            let printed = parsed.to_string();
            prop_assert_eq!(printed.parse::<Checksum>().unwrap(), parsed);
            prop_assert!(
                printed.eq_ignore_ascii_case(&input)
                    || printed[7..].eq_ignore_ascii_case(&input)
                    || parsed.sri() == input,
                "{:?} read as {}", input, printed
            );
        }
    }

    /// `sha256:<hex>`, bare hex in either case and SRI all read to the same digest; printing
    /// is stable; serde uses the printed form.
    #[test]
    fn checksum_forms_round_trip(checksum in checksum()) {
        let printed = checksum.to_string();
        for form in [
            printed.clone(),
            checksum.hex(),
            checksum.hex().to_uppercase(),
            format!("sha256:{}", checksum.hex().to_uppercase()),
            checksum.sri(),
        ] {
            prop_assert_eq!(form.parse::<Checksum>().unwrap(), checksum, "{}", form);
        }
        prop_assert_eq!(printed.parse::<Checksum>().unwrap().to_string(), printed.clone());
        let json = serde_json::to_string(&checksum).unwrap();
        prop_assert_eq!(&json, &format!("\"{printed}\""));
        prop_assert_eq!(serde_json::from_str::<Checksum>(&json).unwrap(), checksum);
    }
}
