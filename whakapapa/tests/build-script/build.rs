fn main() {
    whakapapa_build::emit();
}
