set terminal svg size 1200,800 dynamic noenhanced font "sans,11"
set output "chart.svg"
set multiplot layout 2,2 title "mlc and the floors: ns per operation against keys (median of rounds, log-log; lower is better)"
set logscale xy
set xrange [625:1.6e+07]
set grid xtics ytics
set xlabel "keys"
set ylabel "ns / op"
set format x "1e%L"
set datafile missing "NaN"
set key top left
set title "L1 hit"
plot "chart.dat" index 0 using 1:2 with linespoints lc rgb '#d62728' lw 3 pt 7 title "mlc", "chart.dat" index 0 using 1:3 with linespoints lc rgb '#1f77b4' lw 2 pt 5 dt 2 title "hash", "chart.dat" index 0 using 1:4 with linespoints lc rgb '#2ca02c' lw 2 pt 9 dt 2 title "shm"
set title "L2 hit (MLC_CACHE_NO_L1)"
plot "chart.dat" index 1 using 1:2 with linespoints lc rgb '#d62728' lw 3 pt 7 title "mlc", "chart.dat" index 1 using 1:4 with linespoints lc rgb '#2ca02c' lw 2 pt 9 dt 2 title "shm", "chart.dat" index 1 using 1:5 with linespoints lc rgb '#7f7f7f' lw 2 pt 13 dt 3 title "lmdb"
set title "set (overwrite)"
plot "chart.dat" index 2 using 1:2 with linespoints lc rgb '#d62728' lw 3 pt 7 title "mlc", "chart.dat" index 2 using 1:3 with linespoints lc rgb '#1f77b4' lw 2 pt 5 dt 2 title "hash", "chart.dat" index 2 using 1:4 with linespoints lc rgb '#2ca02c' lw 2 pt 9 dt 2 title "shm", "chart.dat" index 2 using 1:5 with linespoints lc rgb '#7f7f7f' lw 2 pt 13 dt 3 title "lmdb"
set title "miss -> loader -> store"
plot "chart.dat" index 3 using 1:2 with linespoints lc rgb '#d62728' lw 3 pt 7 title "mlc", "chart.dat" index 3 using 1:3 with linespoints lc rgb '#1f77b4' lw 2 pt 5 dt 2 title "hash", "chart.dat" index 3 using 1:4 with linespoints lc rgb '#2ca02c' lw 2 pt 9 dt 2 title "shm", "chart.dat" index 3 using 1:5 with linespoints lc rgb '#7f7f7f' lw 2 pt 13 dt 3 title "lmdb"
unset multiplot
set terminal svg size 900,550 dynamic noenhanced font "sans,11"
set output "ratio.svg"
set title "mlc / floor or peer, paired per round (below 1: mlc faster)"
set logscale xy
set xrange [625:1.6e+07]
set ylabel "mlc / other"
set key outside right
set yrange [*:*]
plot "ratio.dat" using 1:2 with linespoints lw 2 title "L1 hit / hash", "ratio.dat" using 1:3 with linespoints lw 2 title "L2 hit / shm", "ratio.dat" using 1:4 with linespoints lw 2 title "L2 hit / LMDB", "ratio.dat" using 1:5 with linespoints lw 2 title "set / shm", "ratio.dat" using 1:6 with linespoints lw 2 title "set / LMDB", "ratio.dat" using 1:7 with linespoints lw 2 title "miss→store / hash", "ratio.dat" using 1:8 with linespoints lw 2 title "miss→store / LMDB", 1 with lines lc rgb 'black' dt 2 notitle
