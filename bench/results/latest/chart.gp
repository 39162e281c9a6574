set terminal svg size 1400,650 dynamic noenhanced font "sans,11"
set output "chart.svg"
set title "mlc and peers: ns per operation (median of rounds, log scale; lower is better)"
set logscale y
set ylabel "ns / op"
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -40 scale 0 font ",10"
set key top center horizontal
set yrange [1:*]
set datafile missing "NaN"
plot for [i=2:7] "chart.dat" using i:xtic(1) title columnheader(i)
