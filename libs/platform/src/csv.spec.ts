import { toCsv } from './csv';

describe('CSV', () => {
  it('quotes what needs it, keeps negative amounts, and defuses formulas', () => {
    expect(
      toCsv(
        ['a', 'b', 'c'],
        [
          { a: 'x,y', b: 'say "hi"', c: '-12.50' },
          { a: '=HYPERLINK("x")', b: null, c: ['A', 'B'] },
        ],
      ),
    ).toBe('a,b,c\r\n"x,y","say ""hi""",-12.50\r\n"\'=HYPERLINK(""x"")",,"[""A"",""B""]"\r\n');
  });
});
