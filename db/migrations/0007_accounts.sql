-- No known password in a real deployment. 0002_seed.sql gave all 24 seeded staff the shared demo
-- password; here those exact hashes become unusable ('!': matches no password), wherever they are
-- still in place. The demo profile puts demo passwords back afterwards (`python -m
-- healthguard.migrate --demo`, HG_DEMO=1: db/migrations/demo/demo_staff_passwords.sql); a real
-- deployment creates its first supervisor with `python -m oncall.accounts create-admin`.
UPDATE employees SET password_hash = '!'
WHERE (employee_id, password_hash) IN (VALUES
    ('N01', 'scrypt$16384$8$1$s18YyoQhecCh8DxHPVL+QQ==$NXuYfVlG0dXS93Tz8o6x0PK6/8Xi8tvLpuaHD0Rs6Zo='),
    ('N02', 'scrypt$16384$8$1$ul8oxgkAA1GDc/FnvqXcdQ==$lEq+LMGM+/07woScvzvhb9oZyszod8+c4LpmZlARAXU='),
    ('N03', 'scrypt$16384$8$1$GHjWWMwke9ZkDUIi8jt1xg==$QwaE6O2FBdA9Sc5cufHKWr/aEVrZQbpeK2KNi5RfYXI='),
    ('N04', 'scrypt$16384$8$1$7xtB0eQICi1iAuFvqisX2Q==$WpbQaKxisLa5z4ST1ZbF1Cy4OeF/tC2vDYZkL/XbuWs='),
    ('N05', 'scrypt$16384$8$1$JIvJlN2Ex28IUfPIkrhMFQ==$KJcsZckfQ30MYf0W8jl3BIwl3CWisOAPXSnS2NINhy8='),
    ('N06', 'scrypt$16384$8$1$eepsOXvoJAyGWJNlfVpWhg==$KpGHw9fPkqZpM2AQm4IesmqKJk9H8RG8PcCCN09qG38='),
    ('D01', 'scrypt$16384$8$1$WBKz7tngAhisSaVIGR4PIw==$i+pcScEa3ThoEXCecbjHP1LH5pXXenOvHMaD7Z/osDE='),
    ('D02', 'scrypt$16384$8$1$/gXsBk0PpfXjXfvnOEnFkQ==$xGNZBGUZicdwf1qjNNoWKyCRHHV0f4kPEWz+N7WKhbA='),
    ('D03', 'scrypt$16384$8$1$FeIioUXU8Wjka9fSw1Ea9A==$4b88dv+U+pnPw8WYNmx8d5zY0SczagIP7w6NARf386M='),
    ('D04', 'scrypt$16384$8$1$HLBG+Vorp6saDzhheZtIBg==$B1FqdDAY72t6cJCgJ2vEFHoZM5Cob8hFio/7mGU0rKE='),
    ('S01', 'scrypt$16384$8$1$goArvSWR5fI9/7mrtCcjlQ==$3U4RTTlaqks5kb/wXlMs9K3BHM+05DbrWMRLVSzthOA='),
    ('S02', 'scrypt$16384$8$1$VY8vr9nvE56qdiyxXj1QDw==$jdyzldntC5wVib5Hz2pFC6ONxL1J3iVgpBK1+i9XWGo='),
    ('S03', 'scrypt$16384$8$1$Yi30YOGuzxVp5sBZrMDa5g==$kjKvVSsZNNClQb0wITIeFzHOD2GpTHYxmndVtILt+VE='),
    ('S04', 'scrypt$16384$8$1$R22xChyCqnmJBO1ooxFGTQ==$0tKrLFXgoJsJ4RfSo5jshaEw6DcmYiLRTl/mtAGO4Oc='),
    ('S05', 'scrypt$16384$8$1$P5E1fVU/5Yu8FTHbfwhgWw==$Hv+rBrC2D4LU0upucCB7tHJoESChrssuyKflgoql5Hk='),
    ('S06', 'scrypt$16384$8$1$o2eIdSQiF0rWYgcVlylqZg==$xqkyZvpQ8ndZ29M2r4Rm7e7oF80i1AJgKczF4Zey/cA='),
    ('S07', 'scrypt$16384$8$1$Bpg8F2zk0wPyBiZQyJOJ3Q==$xKtCCwE4X1e+J6DSrIELle/stjGB1ehv2PiUzXRnRpQ='),
    ('S08', 'scrypt$16384$8$1$qBbfp7bCYHChDXGp61hm2w==$GbHga4CHXV611z34cU4OQSHPjclfrqr4IyyEAhilFp8='),
    ('S09', 'scrypt$16384$8$1$seFZm0SgzTs4B+8VjrvOgQ==$Zg1cIad0TLlOCA0F56Ai4+Nv4lKX1AOicCr7oFlFrRI='),
    ('S10', 'scrypt$16384$8$1$BfUy6EKZ4AKGDVLmQh9cPw==$RgqWPYb/kszlIqvLxdVYofAfP3yjeee7+ahcGp+ONv4='),
    ('S11', 'scrypt$16384$8$1$PMiqLJpFGetdPvoptExjrg==$6dZkjnFioO7OJSVjOf3LigCO+yC7LC99egKnMWPzptw='),
    ('S12', 'scrypt$16384$8$1$L5Ip0ld5ljSZ09bTtrqfLw==$OM+YggV09sncDgGR3eYF34Dyip9fz5ubUGHxPn5YF4M='),
    ('E01', 'scrypt$16384$8$1$BBuoO64phO+qbCGTH528yQ==$EP+zU4zwgECTu0euQGUq7mYJ8Rb6har9kT/02BoeICg='),
    ('E02', 'scrypt$16384$8$1$G9FkR7BRHOAtILNKehj1Yw==$XAckQdLlXucyWJ/AS72kelAp1LuSxoeG3XhwEJqUkCo=')
);

-- A supervisor's reset hands out a one-time password that must be replaced at the next sign-in.
ALTER TABLE employees
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
    ADD COLUMN password_changed_at  timestamptz;

-- Throttling is per (login, source address) and per address, so one address guessing a login
-- cannot lock that clinician out everywhere. NULL: an attempt recorded before this migration.
ALTER TABLE login_attempts ADD COLUMN source_address inet;
CREATE INDEX login_attempts_source_idx ON login_attempts (source_address, attempted_at);
