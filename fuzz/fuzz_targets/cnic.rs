//! CNIC numbers: `normalize(cnic, _)` against the two layouts NADRA prints (13 digits, or
//! `#####-#######-#`), idempotence, the mask (digits 9-12 only) and the format-preserving
//! token (13 digits in the input's layout, never the value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_fuzz::{assert_no_echo, check_mask, check_preserving};
use tijori_types::{normalize, DataType, ErrorCode};

fn reference(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let plain = b.len() == 13 && b.iter().all(u8::is_ascii_digit);
    let dashed = b.len() == 15
        && b[..5].iter().all(u8::is_ascii_digit)
        && b[5] == b'-'
        && b[6..13].iter().all(u8::is_ascii_digit)
        && b[13] == b'-'
        && b[14].is_ascii_digit();
    (plain || dashed).then(|| raw.replace('-', ""))
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw = raw.as_ref();
    match normalize(DataType::Cnic, raw) {
        Ok(n) => {
            assert_eq!(
                Some(&n),
                reference(raw).as_ref(),
                "accepted against the rule"
            );
            assert_eq!(
                normalize(DataType::Cnic, &n).as_ref(),
                Ok(&n),
                "not idempotent"
            );
            let dashed = format!("{}-{}-{}", &n[..5], &n[5..12], &n[12..]);
            assert_eq!(
                normalize(DataType::Cnic, &dashed).as_ref(),
                Ok(&n),
                "layouts differ"
            );
            check_mask(DataType::Cnic, &n);
            check_preserving(DataType::Cnic, &n, raw, data, true);
        }
        Err(e) => {
            assert_eq!(reference(raw), None, "refused against the rule");
            assert_eq!(e.code, ErrorCode::InvalidCnic);
            assert_no_echo(&e, raw);
        }
    }
    check_mask(DataType::Cnic, raw);
});
