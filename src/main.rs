//! `vitess-operator`: the command line. Each subcommand is a thin shell over a library module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use vitess_operator::{crd, render, validate};

/// A Kubernetes operator for Vitess, compatible with the planetscale.com/v2 API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every CustomResourceDefinition as YAML (or write one file per CRD with --out-dir).
    Crd {
        /// Write `<plural>.planetscale.com.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Check YAML files offline: the CRD schema and CEL rules, plus what a schema cannot
    /// express. Prints one line per problem and exits 1 if there is any.
    Validate {
        /// YAML files (multi-document); `-` reads standard input.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Print, offline, every object the operator would create for the VitessClusters in FILE.
    Render {
        /// A YAML file (multi-document); `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { out_dir } => {
            let result = match out_dir {
                Some(dir) => crd::write_dir(&dir),
                None => crd::all_to_yaml().map(|text| print!("{text}")),
            };
            report(result.map(|()| ExitCode::SUCCESS))
        }
        Command::Validate { files } => {
            let problems = validate::run(&files);
            for problem in &problems {
                println!("{problem}");
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Render { file } => report(render::run(&file).map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        })),
    }
}

/// Turns an error into a message on stderr and exit code 2 (1 is reserved for "invalid input").
fn report<E: std::fmt::Display>(result: Result<ExitCode, E>) -> ExitCode {
    result.unwrap_or_else(|err| {
        eprintln!("vitess-operator: {err}");
        ExitCode::from(2)
    })
}
