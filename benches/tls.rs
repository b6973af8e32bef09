fn main() {
    println!("tls bench: being written");
}
