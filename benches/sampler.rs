//! Criterion benches of the exact sparse sampler (`cargo bench --bench sampler`).
//! Workload: N = 16,384, zipfian(exponent 0.5, max 0.4, min 5e-4) — L0 ≈ 59.1.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synthsae::firing::zipfian;
use synthsae::hazard::HazardTable;
use synthsae::independent::{IndependentSampler, PerFeature};
use synthsae::rng::{row_rng, Stream};

fn probabilities() -> Vec<f64> {
    zipfian(16384, 0.5, 0.4, 5e-4)
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn bench(c: &mut Criterion) {
    let p = probabilities();
    let rows = 65_536u64;
    let mut g = c.benchmark_group("independent_16k_zipf");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);

    let table = HazardTable::new(&p, "p").unwrap();
    g.bench_function("walk_only_1_thread", |b| {
        b.iter(|| {
            let mut fires = 0u64;
            for r in 0..rows {
                table.walk(&mut row_rng(0, Stream::Firing, r), |_| fires += 1);
            }
            fires
        })
    });
    for (std, label) in [(0.0, "std0"), (0.5, "std0.5")] {
        let s =
            IndependentSampler::new(&p, PerFeature::Scalar(1.0), PerFeature::Scalar(std)).unwrap();
        for threads in [1, 2] {
            g.bench_function(format!("csr_{label}_{threads}_threads"), |b| {
                b.iter(|| s.sample(0, 0, rows, Some(threads)).unwrap())
            });
        }
    }
    g.bench_function("build_table", |b| {
        b.iter(|| HazardTable::new(&p, "p").unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
