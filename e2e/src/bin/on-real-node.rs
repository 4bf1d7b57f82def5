//! `on-real-node`: a user's cluster YAML on stdin, printed on stdout as a user would change it
//! to run on the local real node (its tolerations, affinity and mysqld image; see
//! `vitess_operator_e2e::on_real_node`), for `kubectl apply -f -`. Used by `make demo`.

use std::io::Read;

fn main() -> anyhow::Result<()> {
    let mut yaml = String::new();
    std::io::stdin().read_to_string(&mut yaml)?;
    println!("{}", vitess_operator_e2e::on_real_node(&yaml)?);
    Ok(())
}
