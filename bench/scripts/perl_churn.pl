#!/usr/bin/perl
# perl_churn - hash, array and string churn in perl.
#
# Perl allocates every scalar body, hash bucket array and string buffer with
# malloc (Debian's perl is built with the system malloc). Each round fills a
# hash with records, grows strings by appending, deletes two keys in three,
# sorts the rest and rebuilds; a small cache lives across rounds.
#
# usage: perl perl_churn.pl [rounds=7] [records=30000]
# Prints a checksum that depends only on the arguments.
use strict;
use warnings;

my $rounds  = $ARGV[0] // 7;
my $records = $ARGV[1] // 30000;
my %cache;
my $checksum = 0;

for my $r (1 .. $rounds) {
    my %h;
    for my $i (1 .. $records) {
        my $k = "key-$r-" . (($i * 7919) % $records);
        $h{$k} = { id => $i, name => $k, vals => [ $i, $i * 2, $i % 17 ],
                   text => ("x" x ($i % 50)) . $k };
    }
    my $s = '';
    for my $k (keys %h) {
        $s .= substr($k, 0, 6);
        if ($h{$k}{id} % 3) {
            delete $h{$k};
        }
    }
    my @sorted = sort { $h{$a}{id} <=> $h{$b}{id} } keys %h;
    for my $k (@sorted[0 .. ($#sorted < 99 ? $#sorted : 99)]) {
        $cache{$k} = [ @{ $h{$k}{vals} } ];
    }
    if (keys %cache > 2000) {
        my @old = (sort keys %cache)[0 .. 999];
        delete @cache{@old};
    }
    $checksum = ($checksum * 31 + scalar(@sorted) + length($s)) % 1000000007;
}
printf "checksum=%016x\n", $checksum;
