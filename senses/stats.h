/* stats.h - rank statistics for the lexical-similarity evaluation. */
#ifndef BP_SENSE_STATS_H
#define BP_SENSE_STATS_H

/* Ranks 1..n of x (ascending), ties given the average of the ranks they span. */
void average_ranks(const double *x, int n, double *ranks);

/* Spearman's rank correlation of x and y (n pairs): the Pearson correlation of their
 * average ranks. NAN when n < 2 or either side is constant. */
double spearman(const double *x, const double *y, int n);

#endif
