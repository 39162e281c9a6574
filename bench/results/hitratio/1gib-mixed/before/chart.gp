set terminal svg size 1400,650 dynamic noenhanced font "sans,11"
set output "chart.svg"
set title "miss ratio per trace and cache size (lower is better)"
set ylabel "miss ratio"
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics scale 0 font ",9"
set key outside right top
set yrange [0:*]
set datafile missing "-1.0000"
plot for [i=2:7] "chart.dat" using i:xtic(1) title columnheader(i)
