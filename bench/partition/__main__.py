from bench.partition.run import main

main()
