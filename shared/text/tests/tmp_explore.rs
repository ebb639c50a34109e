mod fixtures;
#[test]
#[ignore]
fn explore() {
    let pages: Vec<Vec<u8>> = (0..2000).map(|i| fixtures::show_text(&format!("Page number {i} has a little text on it."))).collect();
    let pdf = fixtures::pdf_with_pages(&pages, true);
    let t = std::time::Instant::now();
    let d = text::extract(&pdf, "a.pdf", None).unwrap();
    println!("{} bytes pdf, {} chars, {:?}", pdf.len(), d.text.len(), t.elapsed());
}
