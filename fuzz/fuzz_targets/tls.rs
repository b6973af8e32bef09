//! TLS records and handshake messages (ClientHello/ServerHello/Certificate, JA3/JA3S/JA4):
//! the first byte splits the input into a client and a server stream, fed in small chunks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_common::Direction;
use netmonitor_tls::flow::TlsFlowParser;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) * rest.len() / 256;
    let (client, server) = rest.split_at(at);
    let mut p = TlsFlowParser::new();
    let chunk = 1 + usize::from(cut % 97);
    let (mut c, mut s) = (client.chunks(chunk), server.chunks(chunk));
    loop {
        let a = c.next();
        let b = s.next();
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(a) = a {
            p.feed(Direction::ToServer, a);
        }
        if let Some(b) = b {
            p.feed(Direction::ToClient, b);
        }
        if let Some(ev) = p.poll_event() {
            std::hint::black_box(ev);
        }
    }
    std::hint::black_box(p.finish());
    // a ClientHello record on its own, as the fingerprint helper takes it
    std::hint::black_box(netmonitor_tls::fingerprint_client_hello(rest));
});
