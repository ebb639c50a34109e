//! The Lambda bootstrap: the shared boundary (`lambda_kit`) serves this function.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_kit::run::<jobs::App>().await
}
