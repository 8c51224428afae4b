#!/usr/bin/perl
# Churn perl's heap: hashes, strings, arrays, regexes.  Run by run.sh with
# and without LD_PRELOAD; the output depends on the code only (hash keys
# are printed sorted), so the two runs must print the same.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $total = 0;
my @keep;
for my $round (1 .. 8) {
    my %h;
    for my $i (1 .. 40000) {
        my $k = sprintf("key%05d-%s", ($i * 7919 + $round) % 20011, "x" x ($i % 17));
        $h{$k} .= chr(65 + $i % 26) x ($i % 40 + 1);
        push @{ $h{"list" . ($i % 300)} }, $i if $i % 7 == 0;
    }
    delete @h{ grep { /7-/ } keys %h };
    $total += length($h{$_}) for grep { !ref $h{$_} } keys %h;
    push @keep, { map { $_ => $h{$_} } (sort keys %h)[0 .. 999] };
    shift @keep if @keep > 3;
}
print "hash total $total, kept ", scalar(map { keys %$_ } @keep), "\n";

my $text = join "\n", map { "line $_: " . ("lorem ipsum " x ($_ % 23)) . reverse("$_" x 5) } 1 .. 50000;
my @words = ($text =~ /(\w+)/g);
my %count;
$count{$_}++ for @words;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
print "words ", scalar(@words), " distinct ", scalar(keys %count), " top @top\n";
(my $copy = $text) =~ s/ipsum/IPSUM-DOLOR/g;
print "text ", length($text), " -> ", length($copy), " md5 ", md5_hex($copy), "\n";

my @sorted = sort { $a <=> $b } map { ($_ * 2654435761) % 1000003 } 1 .. 200000;
print "sorted md5 ", md5_hex(join ",", @sorted[0 .. 999]), "\n";
print "churn.pl: ok\n";
