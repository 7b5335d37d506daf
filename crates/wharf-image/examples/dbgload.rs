fn main() {
    let a: Vec<String> = std::env::args().collect();
    let s = wharf_image::ImageStore::open(std::path::Path::new(&a[1])).unwrap();
    let r = s.load(&mut std::fs::File::open(&a[2]).unwrap(), &mut |l| {
        println!("{l}")
    });
    println!("{r:?}");
}
