//! Prints the identity this build carries, as its user agent.

fn main() {
    println!("{}", whakapapa::identity!().user_agent());
}
