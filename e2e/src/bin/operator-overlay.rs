//! `operator-overlay DIR TAG`: writes `DIR/kustomization.yaml`, the overlay of `config/` that
//! installs the operator's image `vitess-operator:TAG` on the local real node (see
//! `vitess_operator_e2e::write_operator_overlay`), for `kubectl apply -k DIR`. Used by
//! `make demo`.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(tag), None) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: operator-overlay DIR TAG");
    };
    vitess_operator_e2e::write_operator_overlay(std::path::Path::new(&dir), None, &tag)
}
