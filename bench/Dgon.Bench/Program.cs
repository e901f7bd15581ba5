using BenchmarkDotNet.Running;

// Run all benchmarks, or pick with BenchmarkDotNet's own arguments, e.g.
//   dotnet run -c Release --project bench/Dgon.Bench -- --filter '*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Dgon.Bench.NodeAuthBenchmarks).Assembly).Run(args);
