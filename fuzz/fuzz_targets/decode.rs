//! L2–L4 decoding of one frame: the first byte picks the link type, the rest is the frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_capture::decode::{decode, linktype};

const LINKTYPES: [u32; 12] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::LOOP,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::RAW_BSD,
    linktype::RAW_OPENBSD,
    linktype::IPV4,
    linktype::IPV6,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    let _ = decode(lt, frame);
});
