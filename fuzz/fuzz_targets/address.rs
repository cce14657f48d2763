//! An address, a mailbox (`Name <addr>`) and a From header block.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let _ = postwerk_core::address::Address::parse(&text);
        let _ = postwerk_core::address::Mailbox::parse(&text);
        let _ = postwerk_core::rawmsg::single_from(data);
    });
}
